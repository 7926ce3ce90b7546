"""Throughput of ``check_python``: sandboxed programs checked per second.

Each program is a small HumanEval-style solution with three assert tests, so one program is two
sandbox runs (the solution's and the tests'). Runs them from a thread pool (the work happens in child processes).

Usage: PYTHONPATH=src python bench/check_python_throughput.py [--programs 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from phi4_recipes.verify.code_check import check_python
from phi4_recipes.verify.sandbox import check_isolation, isolation_mode

SOLUTION = """\
def running_max(values):
    best, out = None, []
    for value in values:
        best = value if best is None or value > best else best
        out.append(best)
    return out
"""
TESTS = [
    "assert running_max([1, 3, 2]) == [1, 3, 3]",
    "assert running_max([]) == []",
    "assert running_max([{k}, -1, {k}]) == [{k}, {k}, {k}]",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    check_isolation()

    def check(index: int) -> bool:
        tests = [test.format(k=index) for test in TESTS]
        return check_python(SOLUTION, tests, timeout=10.0).passed

    for _ in range(3):
        check(0)  # warm the page cache
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as executor:
        verdicts = list(executor.map(check, range(args.programs)))
    elapsed = time.perf_counter() - started
    if not all(verdicts):
        raise SystemExit(f"{verdicts.count(False)} programs unexpectedly failed")
    print(f"mode={isolation_mode()} cpus={os.cpu_count()} threads={args.threads} programs={args.programs}")
    print(
        f"elapsed_s={elapsed:.2f} programs_per_s={args.programs / elapsed:.1f} ms_per_program={1000 * elapsed / args.programs:.1f}"
    )


if __name__ == "__main__":
    main()
