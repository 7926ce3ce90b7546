"""A single completion cannot make the host do unbounded work: every oracle call on a worst-case
completion of up to MAX_COMPLETION_CHARS returns within its timeout + 1 s and grows the calling
process's peak memory by at most 64 MB. The cases and the runner live in tests/host_bounds.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from host_bounds import CALLS, CASES, MEMORY_LIMIT_KIB

RUNNER = Path(__file__).with_name("host_bounds.py")
STARTUP_S = 60.0  # a fresh interpreter, imports and (math) one worker, on shared CI cores


def run_group(call: str) -> tuple[list[dict], str | None]:
    """Run every case of ``call`` in a fresh interpreter; return the finished cases and the one that hung."""
    cases = [case for case in CASES if case.call == call]
    # Generous: a case over its own budget fails below with its time; this only stops a hang.
    limit = STARTUP_S + len(cases) * 10.0
    try:
        command = [sys.executable, str(RUNNER), call]
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=RUNNER.parent)
        stdout, hung = done.stdout, None
        assert done.returncode == 0, done.stderr[-3000:]
    except subprocess.TimeoutExpired as expired:
        stdout = expired.stdout or b""  # TimeoutExpired holds bytes even when text=True
        stdout = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
        hung = f"did not finish within {limit:.0f} s"
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    results = [line for line in lines if "seconds" in line]
    started = [line["case"] for line in lines if line.get("started")]
    if hung and started:
        hung = f"case {started[-1]!r} {hung}"
    return results, hung


@pytest.mark.parametrize("call", [pytest.param(name, marks=pytest.mark.sandbox) if name == "code" else name for name in sorted(CALLS)])
def test_worst_case_completions_are_bounded(call):
    results, hung = run_group(call)
    failures = [hung] if hung else []
    for result in results:
        name = result["case"]
        if result["seconds"] > result["budget_s"]:
            failures.append(f"{name}: {result['seconds']:.2f} s, over its {result['budget_s']:.1f} s budget")
        if result["growth_kib"] > MEMORY_LIMIT_KIB:
            grown = result["growth_kib"] / 1024
            failures.append(f"{name}: peak memory grew {grown:.0f} MB (read from {result['memory']})")
        failures.extend(f"{name}: {problem}" for problem in result["problems"])
    expected = {case.name for case in CASES if case.call == call}
    if not hung:
        assert {result["case"] for result in results} == expected
    assert not failures, "\n".join(failures)
