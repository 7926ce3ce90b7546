"""Score html_to_text on the real-page dev set, split into a part we look at and a held-out part that only decides.

The pages and the scorer live outside the repo (../shared/curate-dev: trafilatura's evaluation corpus plus its
bench.py); nothing from them is committed. The split is a stable hash of the page name, so every run and every
engineer gets the same two parts, and rules are never tuned on the held-out pages.

    CURATE_REAL_DATA=/tmp/cdev PYTHONPATH=src python ../shared/curate-dev/bench.py --only ours,traf,resiliparse
    CURATE_DEV_BENCH=../shared/curate-dev/bench.py python bench/curate_dev_split.py [--results /tmp/curate-dev-results]
        -> one table per part (F1/P/R on the 'with'/'without' snippets, empty pages, crashes, docs/s)
    ... --losses N   the N dev-part pages where ours misses most snippets that trafilatura gets (never held-out ones)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
from pathlib import Path

HELD_OUT_SHARE = 4  # one page in four is held out


def is_held_out(name: str) -> bool:
    """Stable page split: the same page is held out on every machine and in every run."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % HELD_OUT_SHARE == 0


def _load_scorer(path: str):
    spec = importlib.util.spec_from_file_location("curate_dev_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_table(results: list[dict], names: list[str], scorer) -> str:
    lines = ["| part | extractor | F1 | P | R | empty | crashes | docs/s | speed vs trafilatura |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for part, held in (("dev", False), ("held-out", True)):
        rows = [r for r in results if is_held_out(r["name"]) == held]
        summary = scorer.aggregate(rows, names)
        traf_speed = next((s["docs_per_s"] for n, s in summary.items() if n.startswith("trafilatura")), None)
        for name, s in summary.items():
            t = s.get("traf", {})
            ratio = f"{s['docs_per_s'] / traf_speed:.1f}x" if traf_speed else "n/a"
            lines.append(f"| {part} ({len(rows)} pages) | {name} | {t.get('f1', 0):.3f} | {t.get('precision', 0):.3f} "
                         f"| {t.get('recall', 0):.3f} | {s['empty']} | {s['crashes']} | {s['docs_per_s']:.1f} | {ratio} |")
    return "\n".join(lines)


def dev_losses(results: list[dict], ours: str, other: str, limit: int) -> list[str]:
    """Dev-part pages sorted by how many more snippets `other` gets right than `ours` (TP gained + FP avoided)."""
    rows = []
    for r in results:
        if is_held_out(r["name"]) or "traf" not in r["scores"][ours]:
            continue
        tp, fp, _, _ = r["scores"][ours]["traf"]
        otp, ofp, _, _ = r["scores"][other]["traf"]
        rows.append(((otp - tp) + (fp - ofp), r["name"], tp, fp, otp, ofp))
    rows.sort(reverse=True)
    return [f"{gap:+d} {name}  ours tp={tp} fp={fp}  other tp={otp} fp={ofp}" for gap, name, tp, fp, otp, ofp in
            rows[:limit] if gap > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="/tmp/curate-dev-results", help="bench.py --out folder")
    parser.add_argument("--losses", type=int, default=0)
    args = parser.parse_args()
    scorer = _load_scorer(os.environ.get("CURATE_DEV_BENCH", "../shared/curate-dev/bench.py"))
    results = [json.loads(line) for line in open(Path(args.results) / "per_page.jsonl", encoding="utf-8")]
    names = list(results[0]["scores"])
    print(split_table(results, names, scorer))
    if args.losses:
        print("\n".join(dev_losses(results, names[0], names[1], args.losses)))


if __name__ == "__main__":
    main()
