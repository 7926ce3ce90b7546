"""Worst-case completions for the oracles, and the runner that measures them in a fresh interpreter.

``tests/test_verify_host_bounds.py`` runs ``python tests/host_bounds.py CALL [CASE ...]`` once per
oracle call (one interpreter per group keeps the suite fast: the math group starts one worker).
The runner prints one JSON line when a case starts and one when it ends, so a case that hangs is
named by the last "started" line:

    {"case": NAME, "started": true}
    {"case": NAME, "seconds": float, "budget_s": float, "growth_kib": int, "memory": str, "problems": [str]}

To add a case, append ``Case(name, builder, call)`` to ``CASES``; to add an oracle (the code oracle,
say), add a setup function to ``CALLS`` that returns a ``Call``.

Peak memory is read from ``VmHWM`` after resetting it through ``/proc/self/clear_refs``: a child's
``ru_maxrss`` starts at the peak of the process that spawned it (pytest, with torch imported), so
it would hide any growth below that.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from phi4_recipes.verify.limits import MAX_ANSWER_CHARS, MAX_COMPLETION_CHARS

MATH_TIMEOUT_S = 2.0  # the math pool's comparison timeout; a math call may take this plus 1 s
MEMORY_LIMIT_KIB = 64 * 1024
WARM_TEXT = "The answer is \\boxed{\\frac{2}{4}}.\n```python\nx = 1\n```"


def fill(unit: str, prefix: str = "", suffix: str = "") -> str:
    """``prefix + unit * k + suffix``, as long as an oracle still reads (``MAX_COMPLETION_CHARS``)."""
    room = MAX_COMPLETION_CHARS - len(prefix) - len(suffix)
    return prefix + unit * (room // len(unit)) + suffix


@dataclass(frozen=True)
class Case:
    """One worst-case completion for one oracle call.

    Attributes:
        name (str): what the case attacks, unique per call.
        build (Callable[[], str]): makes the completion (built before memory is measured).
        call (str): a key of ``CALLS``.
    """

    name: str
    build: Callable[[], str]
    call: str


@dataclass
class Call:
    """An oracle set up for measuring: ``run(text)`` once per case.

    Attributes:
        run (Callable[[str], object]): judges one completion.
        budget_s (float): the most seconds one ``run`` may take (the oracle's timeout + 1 s).
        problems (Callable[[], list[str]]): other broken bounds seen since the last call; read once per case.
        close (Callable[[], None]): releases what the setup started (worker processes).
    """

    run: Callable[[str], object]
    budget_s: float
    problems: Callable[[], list[str]] = field(default=lambda: [])
    close: Callable[[], None] = field(default=lambda: None)


def _math_call() -> Call:
    from phi4_recipes.verify import math_oracle

    # Spy on what reaches a math-verify worker: the bound is on the answer handed over, which
    # time alone cannot show (the worker's own timeout caps the wait).
    longest = [0]
    compare = math_oracle._MathWorker.compare

    def spying_compare(worker, prediction, reference, timeout):
        longest[0] = max(longest[0], len(prediction), len(reference))
        return compare(worker, prediction, reference, timeout)

    math_oracle._MathWorker.compare = spying_compare
    pool = math_oracle.MathVerifierPool(num_workers=1, timeout=MATH_TIMEOUT_S)

    def problems() -> list[str]:
        sent, longest[0] = longest[0], 0
        return [f"a {sent}-character answer reached math-verify"] if sent > MAX_ANSWER_CHARS else []

    return Call(lambda text: math_oracle.math_equal(text, "7", pool=pool), MATH_TIMEOUT_S + 1, problems, pool.close)


def _exact_call() -> Call:
    from phi4_recipes.verify.exact import exact_match

    return Call(lambda text: exact_match(text, ["Paris", "the city of Paris"]), 1.0)


def _choice_call() -> Call:
    from phi4_recipes.verify.choice import choice_equal

    return Call(lambda text: choice_equal(text, "B", letters="ABCD"), 1.0)


def _code_call() -> Call:
    from phi4_recipes.verify.answers import extract_code

    return Call(extract_code, 1.0)


CODE_TIMEOUT_S = 2.0  # the code oracle's CPU budget per sandbox; a code call may take this plus 1 s


def _code_oracle_call() -> Call:
    from phi4_recipes.verify.oracles import make_oracle

    # Builtin-only tests: before issue 34 the host parsed the solution to find its builtin names.
    oracle = make_oracle("code", ["assert pow(2, 10) == 1024", "assert abs(-2) == 2"], timeout=CODE_TIMEOUT_S)
    return Call(oracle, CODE_TIMEOUT_S + 1)


CALLS: dict[str, Callable[[], Call]] = {
    "code": _code_oracle_call,
    "math": _math_call,
    "exact": _exact_call,
    "choice": _choice_call,
    "extract_code": _code_call,
}

# Worst cases per parser. Each took seconds to hours on the regex extractors they replaced, or
# sent a megabyte-long answer to math-verify.
_SHARED = [  # everything that reads the final answer: the math and exact oracles
    ("answer phrase + newlines", lambda: fill("\n", prefix="answer")),
    ("answer phrase + control-character spaces", lambda: fill("\x1c\x1d\x1e\x1f\x0b\x0c", prefix="answer")),
    ("nested unclosed \\boxed{", lambda: fill("\\boxed{")),
    ("\\boxed with no braces", lambda: fill("\\boxed")),
    ("repeated 'answer: $$' lines", lambda: fill("answer: $$\n")),
    ("answer wrapped in dollars", lambda: fill("$", prefix="answer: ")),
]

CASES: list[Case] = [
    *(Case(name, build, "math") for name, build in _SHARED),
    Case("digit run", lambda: fill("9"), "math"),
    Case("digit run with thousands commas", lambda: fill(",000", prefix="1"), "math"),
    *(Case(name, build, "exact") for name, build in _SHARED),
    Case("'answer' + spaces", lambda: fill(" ", prefix="answer"), "choice"),
    Case("'answer' + control-character spaces", lambda: fill("\x1c", prefix="answer"), "choice"),
    Case("blank lines", lambda: fill("\n"), "choice"),
    Case("\\boxed{ + spaces", lambda: fill(" ", prefix="\\boxed{"), "choice"),
    Case("fence + backticks", lambda: fill("`", prefix="```\n"), "extract_code"),
    # The code oracle: the program goes to its sandbox unparsed, so the host's work stays linear.
    Case("control characters (a repr 4x as long)", lambda: fill("\x01\x02\x7f"), "code"),
    Case("a long valid program defining builtin names", lambda: fill("x = 1\n", prefix="def pow(a, b):\n    return a ** b\n"), "code"),
    Case("nested parentheses", lambda: fill("("), "code"),
    Case("one fence + backticks", lambda: fill("`", prefix="```python\n"), "code"),
    Case("a 12 MB program, past the size limit", lambda: fill("x = 1\n") * 12, "code"),
    Case("fences with no header newline", lambda: fill("```x"), "extract_code"),
    Case("fence + spaces, no newline", lambda: fill(" ", prefix="```"), "extract_code"),
]


def _reset_peak() -> str:
    """Reset this process's peak RSS; return how peaks are read ("VmHWM", or "ru_maxrss" if /proc refuses)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM"
    except OSError:
        return "ru_maxrss"


def _peak_kib(method: str) -> int:
    if method == "VmHWM":
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(call_name: str, case_names: list[str] | None = None) -> None:
    """Judge each case of ``call_name`` once, printing its time and peak-memory growth as JSON lines.

    Args:
        call_name (str): a key of ``CALLS``.
        case_names (list[str] | None): the cases to run; all of the call's if None.
    """
    cases = [case for case in CASES if case.call == call_name and (not case_names or case.name in case_names)]
    call = CALLS[call_name]()
    call.run(WARM_TEXT)  # imports, compiled regexes and the math worker are paid before any case
    call.problems()
    for case in cases:
        text = case.build()
        call.run(WARM_TEXT[:20])
        gc.collect()
        method = _reset_peak()
        before = _peak_kib(method)
        print(json.dumps({"case": case.name, "started": True}), flush=True)
        start = time.monotonic()
        call.run(text)
        seconds = time.monotonic() - start
        growth = _peak_kib(method) - before
        del text
        print(json.dumps({"case": case.name, "seconds": round(seconds, 3), "budget_s": call.budget_s,
                          "growth_kib": growth, "memory": method, "problems": call.problems()}), flush=True)
    call.close()


if __name__ == "__main__":
    measure(sys.argv[1], sys.argv[2:] or None)
