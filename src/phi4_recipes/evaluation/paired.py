"""Paired differences between two evaluated checkpoints on the same held-out items, and whether each is
significant: beyond two standard errors of the mean per-item difference (one rule, `direction`, for every
table cell and sentence). Scores come from run_eval's per-sample files, so differences are per item, not
between two accuracies with their own noise.
"""

from __future__ import annotations

import math
from pathlib import Path

from phi4_recipes.evaluation.results import read_results
from phi4_recipes.jsonl import read_jsonl

Z_SIGNIFICANT = 2.0


def result_files(eval_dir: Path) -> list[Path]:
    """run_eval's result JSONs in `eval_dir` (its `<run_name>.json`; other JSON files there are skipped)."""
    found = []
    for path in sorted(Path(eval_dir).glob("*.json")):
        try:
            read_results(path)
        except ValueError:
            continue
        found.append(path)
    return found


def item_scores(eval_dir: Path, benchmark: str) -> dict[str, float]:
    """doc id -> score of one benchmark, read from the samples file of the run_eval result in `eval_dir`
    that scored it (`<run_name>_samples/<benchmark>.jsonl` beside `<run_name>.json`), under the metric the
    benchmark registry names for it."""
    holders = [(path, read_results(path)) for path in result_files(eval_dir)]
    holders = [(path, record) for path, record in holders if benchmark in record["benchmarks"]]
    if len(holders) != 1:
        found = ", ".join(str(path) for path, _ in holders) or "none"
        raise ValueError(f"{eval_dir}: expected one run_eval result scoring '{benchmark}', found {found}")
    path, record = holders[0]
    metric, _, filter_name = record["benchmarks"][benchmark]["metric"].partition(",")
    samples = path.with_name(f"{path.stem}_samples") / f"{benchmark}.jsonl"
    scores = {}
    for line_number, row in read_jsonl(samples):
        if filter_name and row.get("filter", filter_name) != filter_name:
            continue  # lm-eval writes one sample per filter; the registry's metric is under one of them
        if metric not in row:
            raise ValueError(f"{samples}:{line_number}: no per-sample '{metric}' (the metric of {benchmark})")
        scores[str(row["doc_id"])] = float(row[metric])
    return scores


def paired_difference(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    """Mean of b - a over the items both scored (each item's scores averaged over seeds first), its stderr
    over items, and the per-seed differences (their spread shows what varies between seeds)."""
    items = sorted(set(a) & set(b))
    if not items:
        raise ValueError("no item was scored by both sides; are they the same benchmark and split?")
    per_item = [sum(b[i]) / len(b[i]) - sum(a[i]) / len(a[i]) for i in items]
    n = len(per_item)
    mean = sum(per_item) / n
    stderr = math.sqrt(sum((d - mean) ** 2 for d in per_item) / (n - 1) / n) if n > 1 else float("nan")
    seeds = min(len(a[i]) for i in items)
    per_seed = [sum(b[i][s] - a[i][s] for i in items) / n for s in range(seeds)]
    return {"items": n, "seeds": seeds, "mean": mean, "stderr": stderr, "per_seed": per_seed}


def z_score(diff: dict) -> float:
    """mean / stderr; a difference with zero spread is infinitely sure, one item (no stderr) not at all."""
    mean, se = diff["mean"], diff["stderr"]
    if math.isnan(se):
        return 0.0
    if se == 0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / se


def direction(diff: dict) -> int:
    """+1 (significantly better), -1 (significantly worse) or 0: |mean| at least two standard errors."""
    z = z_score(diff)
    return 0 if abs(z) < Z_SIGNIFICANT else (1 if z > 0 else -1)


def verdict(diff: dict) -> str:
    """Short form for a table cell."""
    return {1: "significantly better", -1: "significantly worse", 0: "not significant"}[direction(diff)]


def significance_words(first: str, second: str, benchmark: str, diff: dict) -> str:
    """One sentence: is `second` better or worse than `first`, beyond two standard errors?"""
    relation = {1: "significantly better than", -1: "significantly worse than",
                0: "not significantly different from"}[direction(diff)]
    where = f"on {benchmark} ({diff['items']} items, {diff['seeds']} seed{'s' if diff['seeds'] > 1 else ''})"
    return (f"{second} is {relation} {first} {where}: {100 * diff['mean']:+.1f} ± {100 * diff['stderr']:.1f} points "
            f"(|z| = {abs(z_score(diff)):.1f}).")


def paired_report(eval_dirs: list[dict[str, Path]], labels: list[str], stages: list[str], benchmarks: list[str],
                  compare: list[list[str]]) -> tuple[str, list[dict]]:
    """Markdown of each comparison (stage pairs by label) over one or more seeds' eval folders, and one
    record per comparison."""
    lines, records = ["", "### Paired differences (same held-out items; significant = beyond 2 stderr)", ""], []
    lines += ["| benchmark | comparison | difference (points) | stderr | verdict |", "|---|---|---|---|---|"]
    words = []
    label_of = dict(zip(stages, labels, strict=True))
    for benchmark in benchmarks:
        for first, second in compare:
            scores = {}
            for stage in (first, second):
                merged: dict[str, list[float]] = {}
                for dirs in eval_dirs:
                    for item, score in item_scores(dirs[stage], benchmark).items():
                        merged.setdefault(item, []).append(score)
                scores[stage] = merged
            diff = paired_difference(scores[first], scores[second])
            lines.append(f"| {benchmark} | {label_of[second]} - {label_of[first]} | {100 * diff['mean']:+.1f} | "
                         f"{100 * diff['stderr']:.1f} | {verdict(diff)} |")
            words.append(significance_words(label_of[first], label_of[second], benchmark, diff))
            records.append({"benchmark": benchmark, "first": first, "second": second, **diff,
                            "verdict": verdict(diff)})
    return "\n".join(lines + [""] + [f"- {w}" for w in words]) + "\n", records
