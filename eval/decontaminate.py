"""Report n-gram overlap (13-gram by default) between a training dataset and benchmark test sets.

    python eval/decontaminate.py --train data/tiny/arithmetic_train.jsonl --benchmarks tiny_arithmetic,tiny_choice
    python eval/decontaminate.py --train my-org/sft-mix --benchmarks math,gpqa,humaneval --out contamination.json

An item counts as contaminated when one of its word n-grams (lowercased, punctuation dropped) occurs in any
training row; items shorter than n words must appear whole. Benchmarks are names from eval/benchmarks.yaml.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phi4_recipes.evaluation.contamination import benchmark_items, overlap_report, training_texts
from phi4_recipes.evaluation.lm_eval_runner import build_task_manager
from phi4_recipes.evaluation.registry import REGISTRY_FILE, load_registry, select_benchmarks


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training data: .jsonl/.json/.parquet file or Hub id")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--benchmarks", required=True, help="comma-separated registry names")
    parser.add_argument("--registry", default=str(REGISTRY_FILE), help="benchmark registry YAML")
    parser.add_argument("--task-paths", default="", help="comma-separated extra lm-eval task folders")
    parser.add_argument("--n", type=int, default=13, help="n-gram length in words")
    parser.add_argument("--limit", type=int, default=None, help="first N test items per benchmark")
    parser.add_argument("--out", help="write the report as JSON here")
    args = parser.parse_args(argv)

    benchmarks = select_benchmarks(load_registry(args.registry), args.benchmarks.split(","), args.registry)
    task_manager = build_task_manager(benchmarks, [p for p in args.task_paths.split(",") if p])
    items = {b.name: benchmark_items(b, task_manager, args.limit) for b in benchmarks}
    texts, ids = training_texts(args.train, args.train_split)
    report = overlap_report(texts, ids, items, n=args.n)

    for name, entry in report.items():
        print(f"{name}: {entry['contaminated_items']}/{entry['test_items']} test items share a {args.n}-gram "
              f"with {entry['training_rows_with_overlap']} of {len(texts)} training rows")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
