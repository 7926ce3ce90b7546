"""Build a leaderboard from evaluation results written by run_eval.py.

    python eval/leaderboard.py outputs/tiny/eval_base/eval.json outputs/tiny/eval_sft/eval.json \
        --labels base,sft --out-dir outputs/tiny/leaderboard

Writes <out-dir>/leaderboard.md (a Markdown table) and <out-dir>/leaderboard.html (the table and one bar
chart per benchmark, stderr as error bars), with the Phi-4 report's numbers (eval/reference/) as reference
rows where the report has them, and the paired differences between checkpoints on the same items with their
verdicts (each checkpoint against the one before it, or the pairs given with --compare). Arguments may be
result files or folders of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phi4_recipes.evaluation.leaderboard import (
    REFERENCE_FILE,
    build_leaderboard,
    compare_rows,
    to_html,
    to_markdown,
)


def _pairs(text: str) -> list[tuple[str, str]]:
    if text == "none":
        return []
    pairs = [tuple(item.split(":")) for item in text.split(",") if item]
    bad = [":".join(p) for p in pairs if len(p) != 2]
    if bad:
        raise SystemExit(f"--compare: expected first:second label pairs, got {bad}")
    return pairs


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="result JSON files or folders holding them")
    parser.add_argument("--labels", help="comma-separated row labels, one per result file, in order")
    parser.add_argument("--out-dir", default="outputs/leaderboard")
    parser.add_argument("--reference", default=str(REFERENCE_FILE), help="published numbers (YAML)")
    parser.add_argument("--no-reference", action="store_true", help="leave out the published reference rows")
    parser.add_argument("--compare", type=_pairs, default=None,
                        help="label pairs to difference, e.g. base:sft,sft:dpo_pts (default: each result "
                             "against the one before it); 'none' for no comparisons")
    args = parser.parse_args(argv)

    labels = args.labels.split(",") if args.labels else None
    rows, titles = build_leaderboard(args.results, labels, None if args.no_reference else args.reference)
    comparisons, notes = compare_rows(rows, args.compare)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown, page = out / "leaderboard.md", out / "leaderboard.html"
    markdown.write_text(to_markdown(rows, titles, comparisons, notes), encoding="utf-8")
    page.write_text(to_html(rows, titles, comparisons, notes), encoding="utf-8")
    print(markdown.read_text(encoding="utf-8"))
    print(f"wrote {markdown} and {page}")
    return markdown, page


if __name__ == "__main__":
    main()
