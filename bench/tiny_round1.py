"""Choose `make tiny`'s DPO round-1 setting at `make tiny`'s own pair count (issue 37, section 0).

bench/dpo_effect.py chose LoRA + RPO at 3e-4 on runs of about 1,000 PTS pairs; `make tiny` trains on the ~50
pairs its own PTS stage finds, in 7-8 steps, and lost points there. This bench trains round 1 exactly as the
pipeline does (recipes/tiny/dpo_pts.yaml, one epoch over the run's own `pts/pairs.jsonl`, the adapter merged by
phi4_recipes.merge_adapter) at each setting of a grid fixed in advance, and scores it against the run's SFT model.

    # per tuning seed: a pipeline run up to PTS, then the grid on the VALIDATION split
    bash scripts/tiny_pipeline.sh outputs/tiny_s1 --seed 1 --stop_after pts
    PYTHONPATH=src python bench/tiny_round1.py run --run outputs/tiny_s1 --seed 1 --work outputs/round1/s1
    # over the tuning seeds: the setting with the best mean validation difference (ties: the smaller rate)
    PYTHONPATH=src python bench/tiny_round1.py report outputs/round1/s42 outputs/round1/s1 outputs/round1/s3 --out bench/tiny_round1.md
    # once: the chosen setting and SFT on the HELD-OUT split, every seed including an untouched one
    PYTHONPATH=src python bench/tiny_round1.py run --run outputs/tiny_s5 --seed 5 --work outputs/round1/s5 --final bench/tiny_round1.md.chosen.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from dpo_effect import (  # noqa: E402
    HELD_OUT,
    VALIDATION,
    Setting,
    merged_model,
    run_stage,
    score,
    write_recipe,
    write_report,
)

from phi4_recipes.evaluation.paired import paired_difference  # noqa: E402

RECIPE = "recipes/tiny/dpo_pts.yaml"
# Fixed before any score was read: the current setting and three smaller rates, LoRA r16 + RPO weight 1 throughout.
GRID = ("3e-4,0.1,1,,16", "1e-4,0.1,1,,16", "3e-5,0.1,1,,16", "1e-5,0.1,1,,16")


def train(args, work: Path, setting: Setting) -> Path:
    """Round 1 as the pipeline runs it (the recipe's epoch, batch, schedule and seed), at `setting`."""
    out = work / "models" / setting.name
    if not (out / "manifest.json").exists():
        run_dir = Path(args.run)
        recipe = write_recipe(RECIPE, work / "recipes" / f"{setting.name}.yaml", model_name_or_path=str(run_dir / "sft"),
                              datasets=[{"path": "json", "data_files": str(run_dir / "pts" / "pairs.jsonl")}],
                              output_dir=str(out), learning_rate=setting.lr, beta=setting.beta,
                              loss_type=["sigmoid", "sft"] if setting.rpo_alpha else ["sigmoid"],
                              loss_weights=[1.0, setting.rpo_alpha] if setting.rpo_alpha else None, seed=args.seed,
                              **setting.recipe_keys())  # fmt: skip
        run_stage(["src/phi4_recipes/run_dpo.py", str(recipe)], work / "logs" / f"{setting.name}.log", args.threads)
    return out


def run(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pairs = sum(1 for line in (Path(args.run) / "pts" / "pairs.jsonl").open() if line.strip())
    if args.final:
        settings, benchmark, name = [Setting(**json.loads(Path(args.final).read_text()))], HELD_OUT, "final.json"
    else:
        settings, benchmark, name = [Setting.parse(text) for text in args.settings], VALIDATION, "validation.json"
    args.recipes = "recipes/tiny"  # score() runs run_eval with <recipes>/eval.yaml
    print(f"tiny_round1: seed {args.seed}, {pairs} pairs, {benchmark}", flush=True)
    evidence = {"seed": args.seed, "pairs": pairs, "benchmark": benchmark,
                "sft_scores": score(args, work, Path(args.run) / "sft", benchmark), "settings": {}}
    for setting in settings:
        weights = merged_model(train(args, work, setting))
        evidence["settings"][setting.name] = {"setting": setting.__dict__, "scores": score(args, work, weights, benchmark)}
    (work / name).write_text(json.dumps(evidence, indent=1))
    print(f"tiny_round1: wrote {work / name}", flush=True)


def differences(runs: list[dict]) -> dict[str, dict]:
    """Each setting minus SFT, paired over items, each item's difference averaged over the seeds."""
    found = {}
    for key in runs[0]["settings"]:
        if all(key in r["settings"] for r in runs):
            sft = {item: [r["sft_scores"][item] for r in runs] for item in runs[0]["sft_scores"]}
            tuned = {item: [r["settings"][key]["scores"][item] for r in runs] for item in runs[0]["sft_scores"]}
            found[key] = paired_difference(sft, tuned)
    return found


def report(args) -> None:
    lines = ["# make tiny's DPO round 1 at its own pair count (bench/tiny_round1.py)", ""]
    chosen = None
    for file_name, title in (("validation.json", "Validation (choosing)"), ("final.json", "Held-out (read once)")):
        runs = [json.loads((Path(w) / file_name).read_text()) for w in args.works if (Path(w) / file_name).exists()]
        if not runs:
            continue
        lines += [f"## {title}: seeds " + ", ".join(f"{r['seed']} ({r['pairs']} pairs)" for r in runs), "",
                  "| setting | minus SFT, points | per seed | SFT |", "|---|---|---|---|"]
        found = differences(runs)
        sft = ", ".join(f"{100 * sum(r['sft_scores'].values()) / len(r['sft_scores']):.1f}" for r in runs)
        for key, diff in found.items():
            per_seed = ", ".join(f"{100 * d:+.1f}" for d in diff.get("per_seed", []))
            lines.append(f"| {key} | {100 * diff['mean']:+.1f} ± {100 * diff['stderr']:.1f} | {per_seed} | {sft} |")
        if file_name == "validation.json":
            # Best mean; a tie goes to the smaller learning rate, the smaller change to the SFT model.
            best = max(found, key=lambda key: (found[key]["mean"], -runs[0]["settings"][key]["setting"]["lr"]))
            chosen = runs[0]["settings"][best]["setting"]
            lines.append(f"\nChosen on validation: {best}")
    write_report(args.out, lines, chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one seed's grid (validation) or its chosen setting (held-out)")
    one.add_argument("--run", required=True, help="a pipeline run folder with sft/ and pts/pairs.jsonl")
    one.add_argument("--seed", type=int, required=True)
    one.add_argument("--work", required=True)
    one.add_argument("--settings", nargs="+", default=list(GRID), help="lr[,beta[,rpo_alpha[,optim[,lora_r]]]] each")
    one.add_argument("--final", help="the .chosen.json of `report`: score it on the held-out split")
    one.add_argument("--threads", type=int, default=2)
    table = commands.add_parser("report", help="choose over the tuning seeds' validation runs; table the held-out ones")
    table.add_argument("works", nargs="+")
    table.add_argument("--out", default="bench/tiny_round1.md")
    args = parser.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
