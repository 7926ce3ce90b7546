"""The tiny end-to-end run over several seeds: stage accuracies and paired differences with stderr (issue 19).

    python bench/tiny_seeds.py --seeds 1 2 3 [--runs-root outputs] [--out bench/tiny_seeds.md]

Runs recipes/tiny/pipeline.yaml once per seed into <runs-root>/tiny_s<seed> (finished stages are skipped,
so an interrupted bench resumes), then tables, over the same held-out items:
- each stage's accuracy per seed and the mean with its stderr (over items, each item averaged over seeds);
- each consecutive difference (base -> SFT -> PTS-DPO -> judge-DPO), paired per item, in words;
- the PTS evidence: questions searched, pivots found, where they sit in the answer (which kind of token),
  and the DPO reward margins/accuracies the trainer logged.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from phi4_recipes.evaluation.paired import (  # noqa: E402
    item_scores,
    paired_difference,
    significance_words,
    verdict,
)

STAGES = [("eval_base", "base (midtrain)"), ("eval_sft", "SFT"), ("eval_dpo_pts", "PTS-DPO"),
          ("eval_dpo_judge", "judge-DPO")]
BENCHMARKS = ["tiny_arithmetic", "tiny_choice"]


def mean_stderr(per_item: list[float]) -> tuple[float, float]:
    n = len(per_item)
    mean = sum(per_item) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in per_item) / (n - 1) / n)


def pivot_kind(prefix: str) -> str:
    """Where a pivot sits in a step-by-step answer, from the text before it."""
    tail = prefix.rstrip()
    if re.search(r"(carry|borrow)$", tail):
        return "carry/borrow flag"
    if re.search(r"\d+ [-+]$", tail) and ":" not in prefix:
        return "operand (copy)"
    if ":" not in prefix:
        return "operator or operand"
    if "answer is" in tail[-12:]:
        return "final answer digit"
    if re.search(r"=\s*\d*$", tail):
        return "column result digit"
    return "other"


def pts_evidence(run: Path) -> dict:
    # pairs.jsonl holds the token ids and, beside them, the prompt as text.
    pairs = [json.loads(line) for line in (run / "pts" / "pairs.jsonl").read_text().splitlines() if line.strip()]
    kinds = Counter()
    for pair in pairs:
        prompt = pair["prompt"]
        text = prompt if isinstance(prompt, str) else json.dumps(prompt)
        prefix = text.split("<|im_sep|>")[-1] if "<|im_sep|>" in text else text
        kinds[pivot_kind(prefix)] += 1
    stats = json.loads((run / "pts" / "manifest.json").read_text()).get("summary", {})
    return {"pairs": len(pairs), "kinds": dict(kinds), "stats": stats,
            "dpo_pts": dpo_log(run / "dpo_pts"), "dpo_judge": dpo_log(run / "dpo_judge")}


def dpo_log(folder: Path) -> dict:
    """First and last logged reward margin / accuracy of a DPO stage (the Trainer's log_history)."""
    state = folder / "trainer_state.json"
    history = json.loads(state.read_text())["log_history"] if state.is_file() else []
    rows = [{k: row[k] for k in ("rewards/margins", "rewards/accuracies", "loss") if k in row}
            for row in history if "rewards/margins" in row]
    return {"logged_steps": len(rows), "first": rows[0] if rows else None, "last": rows[-1] if rows else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs-root", default="outputs")
    parser.add_argument("--out", default="bench/tiny_seeds.md")
    parser.add_argument("--no-run", action="store_true", help="only table runs that exist")
    parser.add_argument("--parallel", action="store_true", help="run the seeds at the same time")
    args = parser.parse_args()

    runs = [Path(args.runs_root) / f"tiny_s{seed}" for seed in args.seeds]
    if not args.no_run:
        commands = [[sys.executable, "src/phi4_recipes/run_pipeline.py", "recipes/tiny/pipeline.yaml",
                     "--run_dir", str(run), "--seed", str(seed)] for seed, run in zip(args.seeds, runs)]
        if args.parallel:  # same results as one after another (threads per stage are fixed), less wall time
            processes = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL) for cmd in commands]
            if any(p.wait() for p in processes):
                raise SystemExit("a seed's pipeline failed; see <run>/logs/")
        else:
            for cmd in commands:
                subprocess.run(cmd, cwd=REPO, check=True)

    lines = [f"Seeds {args.seeds}; stderr over held-out items (each item's score averaged over the seeds).", ""]
    record = {"seeds": args.seeds, "benchmarks": {}}
    for benchmark in BENCHMARKS:
        scores = {stage: {} for stage, _ in STAGES}
        for run in runs:
            for stage, _ in STAGES:
                for item, score in item_scores(run / stage, benchmark).items():
                    scores[stage].setdefault(item, []).append(score)
        lines += [f"**{benchmark}** ({len(scores['eval_sft'])} items)", "",
                  "| stage | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± stderr |",
                  "|---|" + "---|" * len(args.seeds) + "---|"]
        table = {}
        for stage, label in STAGES:
            per_seed = [100 * sum(v[k] for v in scores[stage].values()) / len(scores[stage])
                        for k in range(len(runs))]
            mean, se = mean_stderr([sum(v) / len(v) for v in scores[stage].values()])
            table[stage] = {"per_seed": per_seed, "mean": mean, "stderr": se}
            lines.append(f"| {label} | " + " | ".join(f"{p:.1f}" for p in per_seed) + f" | {100 * mean:.1f} ± "
                         f"{100 * se:.1f} |")
        lines += ["", "| difference | mean ± stderr (points) | per seed | verdict |", "|---|---|---|---|"]
        words = []
        for (first, first_label), (second, second_label) in zip(STAGES, STAGES[1:]):
            diff = paired_difference(scores[first], scores[second])
            sentence = significance_words(first_label, second_label, benchmark, diff)
            lines.append(f"| {second_label} - {first_label} | {100 * diff['mean']:+.1f} ± {100 * diff['stderr']:.1f}"
                         f" | {', '.join(f'{100 * d:+.1f}' for d in diff['per_seed'])} | {verdict(diff)} |")
            words.append(sentence)
            table[f"{second}-{first}"] = diff
        lines += [""] + [f"- {w}" for w in words] + [""]
        record["benchmarks"][benchmark] = table

    lines += ["**PTS and DPO evidence per seed**", "",
              "| seed | PTS questions searched / filtered | p(query) histogram (tenths) | pivots | PTS pairs | where the "
              "pivots sit | DPO-PTS margin first -> last | DPO-judge margin first -> last |",
              "|---|---|---|---|---|---|---|---|"]
    for seed, run in zip(args.seeds, runs):
        evidence = pts_evidence(run)
        record.setdefault("pts", {})[seed] = evidence

        def margin(log):
            if not log["first"]:
                return "n/a"
            return (f"{log['first'].get('rewards/margins', float('nan')):.3f} -> "
                    f"{log['last'].get('rewards/margins', float('nan')):.3f} (acc {log['last'].get('rewards/accuracies', float('nan')):.2f})")

        kinds = ", ".join(f"{k} {v}" for k, v in sorted(evidence["kinds"].items(), key=lambda kv: -kv[1]))
        s = evidence["stats"]
        lines.append(f"| {seed} | {s.get('searched')} / {s.get('filtered')} | {s.get('p_query_histogram')} | "
                     f"{s.get('pivots')} | {evidence['pairs']} | {kinds or '-'} | {margin(evidence['dpo_pts'])} | "
                     f"{margin(evidence['dpo_judge'])} |")
    times = {}
    for run in runs:
        for row in json.loads((run / "times.json").read_text()):
            times.setdefault(row["stage"], []).append(row["seconds"])
    lines += ["", "**Seconds per stage** (each seed's own run; skipped stages show the time of their first run)", "",
              "| stage | " + " | ".join(f"seed {s}" for s in args.seeds) + " |", "|---|" + "---|" * len(args.seeds)]
    for stage, secs in times.items():
        lines.append(f"| {stage} | " + " | ".join(f"{s:.0f}" for s in secs) + " |")
    lines.append("| total | " + " | ".join(f"{sum(t[k] for t in times.values()):.0f}" for k in range(len(runs))) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
