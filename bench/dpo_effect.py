"""Does DPO on Pivotal Token Search pairs improve the tiny SFT model? Four arms from one SFT checkpoint, with the
same rollout budget for their data and the same number of optimizer steps (issue 24, sections 2-4).

    # per seed: PTS, rollout-matched samples, each arm at each setting, scored on the VALIDATION split
    PYTHONPATH=src python bench/dpo_effect.py run --sft outputs/tiny_s1/sft --seed 1 --work outputs/dpo_effect/s1
    # over the tuning seeds: choose each arm's setting on validation (writes <out>.chosen.json)
    PYTHONPATH=src python bench/dpo_effect.py report outputs/dpo_effect/s1 outputs/dpo_effect/s2 --out bench/dpo_effect.md
    # once, at the end: the chosen settings (and SFT) on the HELD-OUT split, every seed including the untouched one
    PYTHONPATH=src python bench/dpo_effect.py run --sft ... --final bench/dpo_effect.md.chosen.json

Arms (the issue's a-d):
- `pts`: DPO on PTS's single-token pairs (its own search rollouts are the budget);
- `full`: DPO on whole sampled responses, a correct one against an incorrect one to the same question;
- `rft`: rejection-sampling fine-tuning, SFT on the correct sampled responses;
- `random`: the negative control, PTS's pairs with chosen and rejected swapped by a coin flip, so the same
  prefixes (positions) and tokens with no signal in which side is preferred.
`full` and `rft` sample as many whole responses as PTS spent rollouts (filter, search, confirmation and its
sampled responses), spread over the same questions. A tenth of PTS's questions (by id hash) is kept out of
training: the reward margins on their pairs show whether DPO generalises beyond the pairs it saw.

Every stage is the project's own script (run_pts, run_dpo, run_sft, run_eval), run as a user runs it on a recipe
written under <work>/recipes/; a stage whose output exists is skipped, so a killed run resumes.

The defaults are the tiny model's: recipes/tiny, data/tiny/arithmetic_train.jsonl, the tiny_arithmetic splits,
the transformers backend. Another model names its own recipes folder (pts.yaml, dpo_pts.yaml, sft.yaml, eval.yaml),
questions, benchmarks and backend; bench/gpu_suite.sh --only dpo_effect runs the bench on SmolLM2-135M-Instruct
(`--recipes recipes/smollm2 --backend vllm`, the smollm2_questions splits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from tiny_seeds import pivot_kind  # noqa: E402  (bench scripts share helpers by path)

from phi4_recipes.evaluation.dpo_log import margin_curve, window_mean  # noqa: E402
from phi4_recipes.evaluation.paired import item_scores, paired_difference  # noqa: E402
from phi4_recipes.jsonl import read_jsonl, write_jsonl  # noqa: E402

ARMS = ("pts", "full", "rft", "random")
VALIDATION, HELD_OUT = "tiny_arithmetic_validation", "tiny_arithmetic"
MARGIN_SHARE = 10  # one question in ten keeps its pairs out of training


@dataclass(frozen=True)
class Setting:
    """One point of the DPO grid: learning rate, beta, the weight of RPO's NLL term on the chosen side, the
    optimizer (transformers' `optim`; empty: the recipe's AdamW) and the LoRA rank (0: every weight trains)."""

    lr: float
    beta: float = 0.1
    rpo_alpha: float = 0.0
    optim: str = ""
    lora_r: int = 0

    @property
    def name(self) -> str:
        return (f"lr{self.lr:g}_b{self.beta:g}_a{self.rpo_alpha:g}" + (f"_{self.optim}" if self.optim else "")
                + (f"_lora{self.lora_r}" if self.lora_r else ""))

    @classmethod
    def parse(cls, text: str) -> Setting:
        """`lr[,beta[,rpo_alpha[,optim[,lora_r]]]]`, e.g. `1e-5,0.1,1`, `0.1,0.1,0,sgd` or `3e-4,0.1,1,,16` (an
        empty optimizer keeps AdamW)."""
        parts = text.split(",")
        if not 1 <= len(parts) <= 5:
            raise ValueError(f"--settings: expected lr[,beta[,rpo_alpha[,optim[,lora_r]]]], got {text!r}")
        lora = [int(parts[4])] if len(parts) == 5 else []
        return cls(*[float(v) for v in parts[:3]], *parts[3:4], *lora)

    def recipe_keys(self) -> dict:
        """What the setting adds to an arm's recipe beyond the learning rate: the optimizer, and LoRA adapters on
        every linear layer (alpha twice the rank) in place of full fine-tuning."""
        keys = {"optim": self.optim} if self.optim else {}
        if self.lora_r:
            keys.update(use_peft=True, lora_r=self.lora_r, lora_alpha=2 * self.lora_r, lora_target_modules=["all-linear"])
        return keys


DEFAULT_SETTINGS = ("2e-6", "1e-5", "5e-5", "1e-5,0.1,1", "5e-5,0.1,1")
# vLLM takes 90% of the GPU by default and keeps it while the engine lives: a `run` without --data_only samples
# in this process and then trains the arms in subprocesses, so the engine leaves them room.
VLLM_KWARGS = {"gpu_memory_utilization": 0.3}


def run_stage(command: list[str], log: Path, threads: int) -> None:
    """Run one of the project's scripts; its output goes to `log`, and a failure names the log."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:2])} failed (exit {done.returncode}); see {log}")
    print(f"  {Path(command[0]).name} {command[1] if len(command) > 1 else ''}: {time.perf_counter() - started:.0f} s",
          flush=True)


def write_recipe(base: str, path: Path, **changes) -> Path:
    """A copy of one of our tiny recipes with `changes` applied (None removes a key)."""
    recipe = yaml.safe_load((ROOT / base).read_text())
    for key, value in changes.items():
        if value is None:
            recipe.pop(key, None)
        else:
            recipe[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def held_out_for_margins(question_id: str) -> bool:
    return int(hashlib.sha1(question_id.encode()).hexdigest(), 16) % MARGIN_SHARE == 0


def generation_backend(args) -> dict:
    """The PTS recipe's generation keys for `--backend` (the samples of `full` and `rft` read them back from it):
    the backend, and its options where the recipe's would not do (another backend's, or `--backend_kwargs`)."""
    if args.backend_kwargs:
        return {"backend": args.backend, "backend_kwargs": json.loads(args.backend_kwargs)}
    return {"backend": args.backend, **({"backend_kwargs": VLLM_KWARGS} if args.backend == "vllm" else {})}


def chat_prompt(question: str, system_prompt: str | None) -> list[dict]:
    """The question as PTS asks it: with the PTS recipe's system prompt where it has one."""
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": question}]


def response_prefix(prompt: str) -> str:
    """The response part of a PTS pair's prompt text: after Phi-4's `<|im_sep|>`, else after ChatML's last
    assistant header (SmolLM2)."""
    if "<|im_sep|>" in prompt:
        return prompt.split("<|im_sep|>")[-1]
    return prompt.rsplit("<|im_start|>assistant\n", 1)[-1]


# ---------------------------------------------------------------------------------------------- data of the arms

def search_pivots(args, work: Path) -> dict:
    """PTS on the first `--questions` training questions; returns run_pts's summary (yield, rollouts)."""
    manifest = work / "pts" / "manifest.json"
    if not manifest.exists():
        recipe = write_recipe(f"{args.recipes}/pts.yaml", work / "recipes" / "pts.yaml", model_name_or_path=str(args.sft),
                              dataset_name=args.train_data, output_dir=str(work / "pts"), max_questions=args.questions,
                              seed=args.seed, plot_max=0, **generation_backend(args))
        run_stage(["src/phi4_recipes/run_pts.py", str(recipe)], work / "logs" / "pts.log", args.threads)
    manifest_data = json.loads(manifest.read_text())
    summary = manifest_data["summary"]
    sampled = manifest_data["resolved_config"]["script_args"]["responses_per_question"] * summary["questions"]
    summary["budget_rollouts"] = summary["rollouts"] + sampled  # its sampled responses count too
    return summary


def sample_responses(args, work: Path, questions: list[dict], per_question: int) -> list[dict]:
    """`per_question` whole responses to each question from the SFT model (T=1, PTS's length cap), graded."""
    path = work / "samples.jsonl"
    if path.exists():
        return [row for _, row in read_jsonl(path)]
    import torch

    from phi4_recipes.generation import SamplingParams, build_generator
    from phi4_recipes.model_loading import get_tokenizer
    from phi4_recipes.tokenizer import stop_token_ids
    from phi4_recipes.verify.math_oracle import math_equal

    torch.set_num_threads(args.threads)
    pts = yaml.safe_load((work / "recipes" / "pts.yaml").read_text())
    tokenizer = get_tokenizer(None, str(args.sft))
    rows = []
    system_prompt = pts.get("system_prompt")
    backend = pts.get("backend", "transformers")
    with build_generator(backend, str(args.sft), tokenizer, **pts.get("backend_kwargs", {})) as generator:
        params = SamplingParams(n=per_question, temperature=pts["temperature"], top_p=pts["top_p"],
                                max_new_tokens=pts["max_new_tokens"], stop_token_ids=stop_token_ids(tokenizer),
                                seed=args.seed)
        for start in range(0, len(questions), 8):
            batch = questions[start:start + 8]
            outputs = generator.chat([chat_prompt(q["question"], system_prompt) for q in batch], params)
            for question, completions in zip(batch, outputs, strict=True):
                responses = [{"text": c.text, "correct": bool(c.finish_reason == "stop" and math_equal(c.text, question["answer"]))}
                             for c in completions]
                rows.append({"id": question["id"], "question": question["question"], "answer": question["answer"],
                             "responses": responses, **({"system_prompt": system_prompt} if system_prompt else {})})
    write_jsonl(path, rows, atomic=True)
    return rows


def arm_datasets(args, work: Path, pairs: list[dict], samples: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """Each arm's training file and its row count, and the PTS pairs kept out of every arm for held-out margins
    (those of one question in ten)."""
    train = [row for row in pairs if not held_out_for_margins(row["question_id"])]
    coin = random.Random(args.seed)
    swapped = []
    for row in train:
        row = dict(row)
        if coin.random() < 0.5:
            for a, b in (("chosen", "rejected"), ("chosen_ids", "rejected_ids")):
                row[a], row[b] = row[b], row[a]
        swapped.append(row)
    full, rft = [], []
    for sample in samples:
        if held_out_for_margins(sample["id"]):
            continue
        prompt = chat_prompt(sample["question"], sample.get("system_prompt"))
        right = list(dict.fromkeys(r["text"] for r in sample["responses"] if r["correct"]))
        wrong = list(dict.fromkeys(r["text"] for r in sample["responses"] if not r["correct"]))
        # Every distinct wrong response against a correct one (cycling through the distinct correct ones): the
        # model's answers repeat, and a repeated pair would only weigh one comparison more.
        full += [{"prompt": prompt, "chosen": [{"role": "assistant", "content": right[i % len(right)]}],
                  "rejected": [{"role": "assistant", "content": bad}]} for i, bad in enumerate(wrong) if right]
        rft += [{"messages": prompt + [{"role": "assistant", "content": good}]} for good in right]
    data = {"pts": train, "random": swapped, "full": full, "rft": rft}
    files = {}
    for arm, rows in data.items():
        path = work / "data" / f"{arm}.jsonl"
        if not path.exists():
            write_jsonl(path, rows, atomic=True)
        files[arm] = {"file": str(path), "rows": len(rows)}
    return files, [row for row in pairs if held_out_for_margins(row["question_id"])]


# ------------------------------------------------------------------------------------------- training and scores

def train_arm(args, work: Path, arm: str, data_file: str, setting: Setting) -> Path:
    """One arm at one setting: `--steps` optimizer steps of `--batch_size` rows from the SFT checkpoint, 10% warmup
    (a float `warmup_steps` below 1 is a ratio in transformers 5), then cosine decay."""
    out = work / "models" / f"{arm}_{setting.name}"
    if (out / "manifest.json").exists():
        return out
    common = dict(model_name_or_path=str(args.sft), output_dir=str(out), datasets=[{"path": "json", "data_files": data_file}],
                  learning_rate=setting.lr, max_steps=args.steps, num_train_epochs=None,
                  per_device_train_batch_size=args.batch_size,
                  warmup_steps=0.1, lr_scheduler_type="cosine", logging_steps=1, seed=args.seed, **setting.recipe_keys())
    if arm == "rft":  # the SFT recipe's loss (assistant tokens only) and template; no beta, no NLL weight
        recipe = write_recipe(f"{args.recipes}/sft.yaml", work / "recipes" / f"{out.name}.yaml", **common)
        script = "src/phi4_recipes/run_sft.py"
    else:
        losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, setting.rpo_alpha]} if setting.rpo_alpha else {
            "loss_type": ["sigmoid"], "loss_weights": None}
        recipe = write_recipe(f"{args.recipes}/dpo_pts.yaml", work / "recipes" / f"{out.name}.yaml", beta=setting.beta,
                              **losses, **common)
        script = "src/phi4_recipes/run_dpo.py"
    run_stage([script, str(recipe)], work / "logs" / f"{out.name}.log", args.threads)
    return out


def merged_model(model: Path) -> Path:
    """The weights to score: `model` itself, or for a LoRA arm (an adapter folder) the adapter merged into its
    base (phi4_recipes.merge_adapter, as the pipeline does), written once beside it, since the scorer and
    `pair_logps` load a plain checkpoint."""
    if not (model / "adapter_config.json").exists():
        return model
    merged = model.parent / f"{model.name}_merged"
    if not (merged / "config.json").exists():
        from phi4_recipes.merge_adapter import merge_adapter

        merge_adapter(model, merged)
    return merged


def logged_margins(model: Path) -> list[dict]:
    """The reward margins and log-probs TRL logged at each optimizer step (DPO arms)."""
    state = model / "trainer_state.json"
    return margin_curve(json.loads(state.read_text())["log_history"]) if state.exists() else []


def pair_logps(model: Path, pairs: list[dict]) -> list[tuple[float, float]]:
    """log p(chosen token) and log p(rejected token) after each single-token pair's prompt."""
    import torch
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    found = []
    with torch.no_grad():
        for row in pairs:
            logits = lm(torch.tensor([row["prompt_ids"]])).logits[0, -1].log_softmax(-1)
            found.append((logits[row["chosen_ids"][0]].item(), logits[row["rejected_ids"][0]].item()))
    return found


def held_out_margins(model: Path, pairs: list[dict], reference_logps: list[tuple[float, float]], beta: float) -> dict:
    """beta * ((log p_policy - log p_ref)(chosen) - (same)(rejected)) on pairs of questions no arm trained on; the
    reference's log-probs are computed once per run (`pair_logps` of the SFT model)."""
    if not pairs:
        return {"pairs": 0}
    margins = [beta * ((pc - rc) - (pr - rr))
               for (pc, pr), (rc, rr) in zip(pair_logps(model, pairs), reference_logps, strict=True)]
    mean = sum(margins) / len(margins)
    spread = math.sqrt(sum((m - mean) ** 2 for m in margins) / max(1, len(margins) - 1) / len(margins))
    return {"pairs": len(margins), "mean": mean, "stderr": spread, "accuracy": sum(m > 0 for m in margins) / len(margins)}


def score(args, work: Path, model: Path, benchmark: str) -> dict[str, float]:
    """Per-item scores of `model` on `benchmark` (run_eval, the leaderboard's scorer), cached under <work>/evals."""
    out = work / "evals" / benchmark / model.name
    if not (out / "eval.json").exists():
        run_stage(["src/phi4_recipes/run_eval.py", f"{args.recipes}/eval.yaml", "--model_name_or_path", str(model),
                   "--benchmarks", benchmark, "--output_dir", str(out)], work / "logs" / f"eval_{benchmark}_{model.name}.log",
                  args.threads)
    return item_scores(out, benchmark)


def run(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"dpo_effect: seed {args.seed}, {args.sft} -> {work}", flush=True)
    summary = search_pivots(args, work)
    searched_questions = [row for _, row in read_jsonl(ROOT / args.train_data)][:args.questions]
    per_question = max(1, round(summary["budget_rollouts"] / max(1, len(searched_questions))))
    if args.max_samples_per_question:  # a cheaper run: the baselines then get less than PTS's budget (reported)
        per_question = min(per_question, args.max_samples_per_question)
    samples = sample_responses(args, work, searched_questions, per_question)
    pairs = [row for _, row in read_jsonl(work / "pts" / "pairs.jsonl")]
    data, margin_pairs = arm_datasets(args, work, pairs, samples)
    kinds: dict[str, int] = {}
    for row in pairs:
        kind = pivot_kind(response_prefix(row["prompt"]))
        kinds[kind] = kinds.get(kind, 0) + 1
    sft = Path(args.sft)
    evidence = {"seed": args.seed, "sft": str(sft), "steps": args.steps, "pts": summary, "pivot_kinds": kinds,
                "samples_per_question": per_question,
                "baseline_share_of_budget": round(per_question * len(searched_questions) / summary["budget_rollouts"], 3),
                "sampled_correct": sum(r["correct"] for s in samples for r in s["responses"]),
                "sampled": sum(len(s["responses"]) for s in samples),
                "rows": {arm: data[arm]["rows"] for arm in ARMS}, "margin_pairs": len(margin_pairs), "arms": {}}
    if args.data_only:  # the untouched seed's data can be made while the tuning seeds are still being chosen on
        print(f"dpo_effect: data of seed {args.seed} ready: {evidence['rows']}", flush=True)
        return
    if args.final:
        chosen = json.loads(Path(args.final).read_text())
        # An arm validation could not score (no rows) has no choice; it is left out of the held-out read.
        plan = [(arm, Setting(**chosen[arm])) for arm in ARMS if arm in chosen]
        benchmark = args.held_out_benchmark
    else:
        plan = [(arm, setting) for arm in ARMS for setting in map(Setting.parse, args.settings)
                if not (arm == "rft" and (setting.rpo_alpha or setting.beta != Setting.beta))]
        benchmark = args.validation_benchmark
    evidence["benchmark"] = benchmark
    evidence["sft_scores"] = score(args, work, sft, benchmark)
    reference_logps = pair_logps(sft, margin_pairs)
    for arm, setting in plan:
        if not data[arm]["rows"]:
            evidence["arms"][f"{arm}/{setting.name}"] = {"arm": arm, "setting": setting.__dict__, "skipped": "no rows"}
            continue
        model = train_arm(args, work, arm, data[arm]["file"], setting)
        weights = merged_model(model)
        evidence["arms"][f"{arm}/{setting.name}"] = {
            "arm": arm, "setting": setting.__dict__, "scores": score(args, work, weights, benchmark),
            "margins": logged_margins(model),
            "held_out_margins": held_out_margins(weights, margin_pairs, reference_logps, setting.beta) if arm != "rft" else None}
    name = "final.json" if args.final else "validation.json"
    (work / name).write_text(json.dumps(evidence, indent=1))
    print(f"dpo_effect: wrote {work / name}", flush=True)


# ------------------------------------------------------------------------------------------------------- report

def arm_differences(runs: list[dict]) -> dict[str, dict]:
    """Each arm/setting minus SFT, paired over items with each item's difference averaged over the seeds."""
    found = {}
    for key in sorted({k for r in runs for k in r["arms"] if "scores" in r["arms"][k]}):
        present = [r for r in runs if "scores" in r["arms"].get(key, {})]
        if len(present) != len(runs):
            continue  # only settings every seed ran are comparable
        sft = {item: [r["sft_scores"][item] for r in runs] for item in runs[0]["sft_scores"]}
        arm = {item: [r["arms"][key]["scores"][item] for r in runs] for item in runs[0]["sft_scores"]}
        found[key] = paired_difference(sft, arm)
    return found


def held_out_pair_results(runs: list[dict], key: str) -> list[dict]:
    """Each seed's margins on the PTS pairs kept out of training (none for RFT, which has no reference)."""
    return [r["arms"][key]["held_out_margins"] for r in runs if (r["arms"][key].get("held_out_margins") or {}).get("pairs")]


def held_out_pair_margin(runs: list[dict], key: str) -> float:
    """Mean held-out-pair margin over the seeds; -inf for an arm without them."""
    held = held_out_pair_results(runs, key)
    return sum(h["mean"] for h in held) / len(held) if held else float("-inf")


def choose_setting(runs: list[dict], differences: dict[str, dict], arm: str) -> str | None:
    """The arm's setting with the best validation score. Ties on that score go to the larger held-out-pair margin,
    the evidence that the preference was learned; only then to the name, so the choice is deterministic. The pairs
    come from training questions, so breaking a tie on them reads nothing of the held-out benchmark. (Set before
    the third tuning seed's grid: until then ties went to the name, which kept AdamW over LoRA + RPO for PTS.)"""
    candidates = [(diff["mean"], held_out_pair_margin(runs, key), key) for key, diff in differences.items()
                  if key.startswith(arm + "/")]
    return max(candidates)[2] if candidates else None


def margin_summary(runs: list[dict], key: str) -> str:
    curves = [r["arms"][key]["margins"] for r in runs if r["arms"].get(key, {}).get("margins")]
    if not curves:
        return "-"
    # Each point is the mean of a tenth of the steps (the first, the middle and the last tenth), over the seeds.
    means = [sum(window_mean(c, where) for c in curves) / len(curves) for where in (0.0, 0.45, 1.0)]
    held = held_out_pair_results(runs, key)
    held_text = f"; held-out pairs {held_out_pair_margin(runs, key):+.3f} ({sum(h['accuracy'] for h in held) / len(held):.0%} > 0)" if held else ""
    return " -> ".join(f"{m:+.3f}" for m in means) + held_text


def report(args) -> None:
    works = [Path(w) for w in args.works]
    validation = [json.loads((w / "validation.json").read_text()) for w in works if (w / "validation.json").exists()]
    final = [json.loads((w / "final.json").read_text()) for w in works if (w / "final.json").exists()]
    lines = ["# DPO effect (bench/dpo_effect.py)", ""]
    for run_ in validation + final:
        pts = run_["pts"]
        lines.append(f"- seed {run_['seed']} ({run_['benchmark']}): PTS {pts['questions']} questions, {pts['searched']} searched, "
                     f"{pts['pivots']} pivots, {pts['pairs']} pairs, {pts['budget_rollouts']} rollouts; samples "
                     f"{run_['samples_per_question']}/question = {run_['baseline_share_of_budget']:.0%} of PTS's rollouts "
                     f"({run_['sampled_correct']}/{run_['sampled']} correct); rows "
                     + ", ".join(f"{a} {n}" for a, n in run_["rows"].items()) + f"; pivots at {run_['pivot_kinds']}")
    chosen = {}
    for title, runs in (("Validation (choosing)", validation), ("Held-out (read once)", final)):
        if not runs:
            continue
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines += ["", f"## {title}: arm minus SFT, points, seeds {seeds}", "",
                  "| arm / setting | minus SFT | per seed | training margins, first -> middle -> last tenth of steps |", "|---|---|---|---|"]
        differences = arm_differences(runs)
        for key, diff in differences.items():
            per_seed = ", ".join(f"{100 * d:+.1f}" for d in diff["per_seed"]) if "per_seed" in diff else ""
            lines.append(f"| {key} | {100 * diff['mean']:+.1f} ± {100 * diff['stderr']:.1f} | {per_seed} | "
                         f"{margin_summary(runs, key)} |")
        if runs is validation:
            for arm in ARMS:
                best = choose_setting(runs, differences, arm)
                if best:
                    chosen[arm] = runs[0]["arms"][best]["setting"]
                    lines.append(f"\nChosen for {arm} on validation: {best}")
    write_report(args.out, lines, chosen)


def write_report(out: str, lines: list[str], chosen: dict) -> None:
    """The report's Markdown at ``out``, the setting chosen on validation beside it (``<out>.chosen.json``, which
    the held-out run reads), and the report on stdout."""
    Path(out).write_text("\n".join(lines) + "\n")
    if chosen:
        Path(f"{out}.chosen.json").write_text(json.dumps(chosen, indent=1))
    print("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one seed: data, arms, scores")
    one.add_argument("--sft", required=True, help="the SFT checkpoint every arm starts from")
    one.add_argument("--seed", type=int, required=True)
    one.add_argument("--work", required=True)
    one.add_argument("--questions", type=int, default=1600, help="training questions PTS screens (the first N)")
    one.add_argument("--steps", type=int, default=120, help="optimizer steps of every arm")
    one.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), help="lr[,beta[,rpo_alpha[,optim[,lora_r]]]] each")
    one.add_argument("--max_samples_per_question", type=int,
                     help="cap the whole responses sampled per question below PTS's rollout budget (cheaper; the "
                          "report shows the share of the budget the baselines got)")
    one.add_argument("--final", help="the .chosen.json of `report`: score those settings on the held-out split")
    one.add_argument("--data_only", action="store_true", help="stop once PTS, the samples and the arms' files exist")
    one.add_argument("--threads", type=int, default=2)
    # Another model than the tiny one: its recipes, questions and benchmarks (the defaults are the tiny run's).
    one.add_argument("--recipes", default="recipes/tiny",
                     help="folder of the recipes the stages copy: pts.yaml, dpo_pts.yaml, sft.yaml (rft), eval.yaml")
    one.add_argument("--train_data", default="data/tiny/arithmetic_train.jsonl",
                     help="JSONL questions (id, question, answer): PTS screens the first --questions, the samples answer them")
    one.add_argument("--validation_benchmark", default=VALIDATION, help="registry benchmark settings are chosen on")
    one.add_argument("--held_out_benchmark", default=HELD_OUT, help="registry benchmark --final reads once")
    one.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                     help="generation backend of PTS and of the full/rft samples (vllm: GPU)")
    one.add_argument("--backend_kwargs", help="JSON options of that backend (default: the PTS recipe's; vllm: "
                                              f"{json.dumps(VLLM_KWARGS)}), e.g. '{{\"device\": \"cuda\"}}'")
    one.add_argument("--batch_size", type=int, default=8, help="training rows per optimizer step, every arm")
    table = commands.add_parser("report", help="tables over seeds; chooses each arm's setting on validation")
    table.add_argument("works", nargs="+")
    table.add_argument("--out", default="bench/dpo_effect.md")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
