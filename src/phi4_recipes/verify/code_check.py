"""Check model-written Python against test cases, agreeing with plain Python and trusting nothing the code says.

Two test styles, as code datasets ship them:

- assert-style (HumanEval, MBPP, LeetCode-style): strings of Python such as ``"assert add(1, 2) == 3"``.
  The solution runs in one sandbox (``_solution_server``), imported as module ``solution`` (so its
  ``if __name__ == "__main__":`` demo does not run), and the tests in another (``_test_runner``):
  separate interpreters joined only by two pipes. The tests reach the solution's names through
  the channel (``_peer``): values cross typed and are rebuilt with the tests' own classes
  (``_wire``: Fraction, Decimal, OrderedDict, namedtuple, deque, Counter, defaultdict, dict views,
  big ints...), and every other object (a ``Solution()`` instance, a closure, a generator) stays in
  the solution's process as a ``Remote`` the tests call, iterate and index. Arguments the solution
  mutates come back; callables the tests pass in are called back on the tests' side; exceptions
  keep their standard-library hierarchy. Only plain values are compared on the trusted side
  (``_remote``), and which names belong to the solution follows from the task (``_candidates``);
- stdin/stdout (APPS, CodeContests): ``{"stdin": "...", "stdout": "..."}``; one sandboxed run per
  case, output compared here, line by line ignoring trailing whitespace.

Nothing of the solution is parsed, rendered or run on the host: its source goes to its sandbox on
stdin, at most ``MAX_CODE_CHARS`` characters, and each sandbox's budget is CPU time (``run_python``).
"""

from __future__ import annotations

import base64
import json
import marshal
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from phi4_recipes.verify._peer import SOLUTION_GONE
from phi4_recipes.verify.limits import MAX_COMPLETION_CHARS
from phi4_recipes.verify.sandbox import ExecResult, default_wall_timeout, run_python, start_python

MAX_CODE_CHARS = MAX_COMPLETION_CHARS
# Stdlib-only modules the sandboxed programs define from source: the sandbox need not have this
# package installed, and the solution's process never holds the test process's code.
_EMBEDDED = {
    "solution": ("_wire", "_peer", "_solution_server"),
    "tests": ("_wire", "_peer", "_candidates", "_remote", "_test_runner"),
}
# Past the expected answer's length, this much more output is allowed before a stdin/stdout run is killed.
_IO_OUTPUT_SLACK = 1 << 16
_TESTS_EXTRA_WALL_S = 10.0


@cache
def _embedded_modules(side: str) -> str:
    """``side``'s modules compiled here once, as base64 of marshal data (compiling 60 kB per sandbox cost 15 ms)."""
    folder = Path(__file__).parent
    codes = [(f"phi4_recipes.verify.{name}", compile((folder / f"{name}.py").read_text(encoding="utf-8"), f"{name}.py", "exec"))
             for name in _EMBEDDED[side]]  # fmt: skip
    return base64.b64encode(marshal.dumps(codes)).decode("ascii")


def _embedded_program(side: str, call: str) -> str:
    """A program that defines ``side``'s modules under their package names, then makes ``call``.

    The sandbox runs the base interpreter of this same Python version, so the marshal format matches.
    """
    return (
        "import sys as _sys, types as _types, marshal as _marshal, binascii as _binascii\n"
        "_sys.setrecursionlimit(10000)\n"
        f"for _name, _code in _marshal.loads(_binascii.a2b_base64({_embedded_modules(side)!r})):\n"
        "    _sys.modules[_name] = _module = _types.ModuleType(_name)\n"
        "    exec(_code, _module.__dict__)\n"
        f"{call}\n"
    )


@dataclass(frozen=True)
class TestOutcome:
    """One test case's verdict.

    Attributes:
        passed (bool): the case passed.
        error (str | None): why it failed (assertion message, wrong output, time-out), None if it passed.
    """

    __test__ = False  # not a pytest class despite the name

    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class CodeCheckResult:
    """All test verdicts for one program.

    Attributes:
        passed (bool): every test passed (False for an empty test list).
        outcomes (list[TestOutcome]): one per test, in order.
        executions (list[ExecResult]): the sandbox runs (for assert-style tests the solution's, then the
            tests'; one per stdin/stdout case; none when the code could not be run at all).
    """

    passed: bool
    outcomes: list[TestOutcome]
    executions: list[ExecResult] = field(repr=False)

    @property
    def num_passed(self) -> int:
        """Number of passing tests."""
        return sum(outcome.passed for outcome in self.outcomes)

    @property
    def pass_fraction(self) -> float:
        """Share of passing tests in [0, 1]."""
        return self.num_passed / len(self.outcomes) if self.outcomes else 0.0


def _normalise_output(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _describe_failure(execution: ExecResult, output_graded: bool = True) -> str:
    if execution.timed_out:
        return "timed out"
    if execution.output_truncated and output_graded:  # else its output was cut, and it ran on
        return "output limit exceeded"
    tail = execution.stderr.strip().splitlines()[-1:] or [f"exit code {execution.exit_code}"]
    return tail[0][-500:]


def collect_verdicts(stdout: str, count: int) -> list[str | None] | None:
    """The test process's verdicts, one per test in order; None unless there is exactly one for each test.

    Each line is ``{"test": index, "error": None | str}``. Missing verdicts (the test process timed
    out or died) come back as the string ``"missing"``; a duplicate, an index out of range or a
    malformed line voids the whole run.
    """
    verdicts: dict[int, str | None] = {}
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
            index, error = record["test"], record["error"]
        except (ValueError, TypeError, KeyError):
            return None
        if type(index) is not int or not 0 <= index < count or index in verdicts:
            return None
        if error is not None and not isinstance(error, str):
            return None
        verdicts[index] = error
    return [verdicts.get(index, "missing") for index in range(count)]


def _check_asserts(
    code: str, tests: list[str], setup: str, entry_points: Sequence[str] | None, run_options: dict
) -> CodeCheckResult:
    to_solution, from_solution = os.pipe(), os.pipe()
    settings = json.dumps({"setup": setup, "tests": tests, "entry_points": list(entry_points or []) or None})
    try:
        # The solution's output is no part of the verdict: past the limit it is cut, the run goes on.
        program = _embedded_program("solution", "from phi4_recipes.verify._solution_server import serve\n"
                                                f"serve({to_solution[0]}, {from_solution[1]})")  # fmt: skip
        feed = f"{len(setup.encode())}\n{setup}{code}"  # the setup runs first in the solution's module too
        solution = start_python(program, stdin=feed, pass_fds=(to_solution[0], from_solution[1]),
                                on_output_limit="truncate", **run_options)  # fmt: skip
    except BaseException:
        os.close(to_solution[1])
        os.close(from_solution[0])
        raise
    try:
        # The verdicts come on the tests' stdout, where nothing else is written; a flood there is not cut.
        program = _embedded_program("tests", "from phi4_recipes.verify._test_runner import run_tests\n"
                                             f"run_tests({to_solution[1]}, {from_solution[0]})")  # fmt: skip
        # The tests mostly wait for the solution: their backstop outlasts its own, so a solution that ends
        # at its wall-clock limit is reported as its time-out, not the tests'.
        wall = (run_options.get("wall_timeout") or default_wall_timeout(run_options["timeout"])) + _TESTS_EXTRA_WALL_S
        tests_run = start_python(program, stdin=settings, pass_fds=(to_solution[1], from_solution[0]),
                                 on_output_limit="kill", **{**run_options, "wall_timeout": wall}).result()  # fmt: skip
    finally:
        solution.stop()  # the tests are over (or could not start); the solution has nothing left to do
        solution_run = solution.result()
    executions = [solution_run, tests_run]
    verdicts = collect_verdicts(tests_run.stdout, len(tests))
    if verdicts is None:
        reason = f"the test process wrote malformed verdicts ({_describe_failure(tests_run)})"
        return CodeCheckResult(False, [TestOutcome(False, reason) for _ in tests], executions)
    # Ended on its own, rather than stopped here once the tests were over.
    solution_ended = solution_run.exit_code is not None or solution_run.timed_out
    outcomes = []
    for error in verdicts:
        if error == "missing":
            error = _describe_failure(tests_run)
        elif error is not None and SOLUTION_GONE in error and solution_ended:
            error = _describe_failure(solution_run, output_graded=False)  # say why: its time-out, its crash
        outcomes.append(TestOutcome(error is None, error))
    return CodeCheckResult(all(outcome.passed for outcome in outcomes), outcomes, executions)


def _code_failure(code: str) -> str | None:
    """Why ``code`` cannot be run at all (a verdict for every test), or None. Looks at its length first."""
    if len(code) > MAX_CODE_CHARS:
        return f"the code is {len(code)} characters; the oracle runs solutions of at most {MAX_CODE_CHARS}"
    try:
        code.encode()
    except UnicodeEncodeError as error:
        return f"the code is not valid Unicode text ({error.reason} at index {error.start})"
    return None


def _check_io(code: str, cases: list[Mapping[str, str]], run_options: dict) -> CodeCheckResult:
    outcomes, executions = [], []
    for case in cases:
        # Output is the answer here: past the limit the run is killed and fails (on_output_limit="kill"); the
        # limit leaves room for the whole expected answer, however long, and as much again for errors.
        expected_bytes = len(case["stdout"].encode())
        limit = max(run_options.get("max_output_bytes", 1 << 20), expected_bytes + max(expected_bytes, _IO_OUTPUT_SLACK))
        execution = run_python(code, stdin=case["stdin"], **{**run_options, "max_output_bytes": limit})
        executions.append(execution)
        if not execution.ok:
            outcomes.append(TestOutcome(False, _describe_failure(execution)))
        elif _normalise_output(execution.stdout) != _normalise_output(case["stdout"]):
            outcomes.append(
                TestOutcome(
                    False, f"wrong output: expected {case['stdout'][:200]!r}, got {execution.stdout[:200]!r}"
                )
            )
        else:
            outcomes.append(TestOutcome(True))
    return CodeCheckResult(
        all(outcome.passed for outcome in outcomes) and bool(outcomes), outcomes, executions
    )


def check_python(
    code: str,
    tests: Sequence[str] | Sequence[Mapping[str, str]],
    *,
    timeout: float = 5.0,
    memory_mb: int = 512,
    allow_unsandboxed: bool = False,
    test_setup: str = "",
    candidates: Sequence[str] | None = None,
    allowed_packages: Sequence[str] = (),
) -> CodeCheckResult:
    """Run ``code`` against ``tests`` in the sandbox and report each verdict.

    Args:
        code (str): the solution source.
        tests (Sequence[str] | Sequence[Mapping[str, str]]): assert-style snippets, or stdin/stdout
            cases as mappings with ``"stdin"`` and ``"stdout"`` keys. Not mixed.
        timeout (float): CPU seconds for each sandbox of the assert run (the solution's, the tests'),
            or for each stdin/stdout case; a generous wall-clock backstop ends programs that sleep.
        memory_mb (int): address-space limit per process, in MiB.
        allow_unsandboxed (bool): see ``run_python``; never the default.
        test_setup (str): trusted code run on the test side before assert-style tests, for helpers
            the tests use (HumanEval's prompt, with e.g. ``poly`` or ``encode_cyclic``).
        candidates (Sequence[str] | None): the task's entry points: names that always mean the
            solution's, even where ``test_setup`` defines them too (HumanEval's prompt holds the
            signature of the function to write) or they are builtins' names. Besides them, a name
            the tests read is the solution's when the solution binds it, the setup does not, and it
            is no builtin; a builtin only when nothing else is, and never one a test only wraps
            around another call to compare (the rule in full: ``_candidates``).
        allowed_packages (Sequence[str]): import names of installed packages the code may import
            (e.g. ``["numpy"]``), on both sides; beyond these only the standard library is in view.

    Returns:
        CodeCheckResult: ``passed`` is True only when every test passed. Code that cannot run at
        all (a lone surrogate, longer than ``MAX_CODE_CHARS``) fails every test, saying why; no
        content of ``code`` makes this raise.

    Raises:
        ValueError: ``tests`` is empty, mixes styles, a case lacks ``stdin``/``stdout``, or a test
            is not valid Unicode text.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be str, got {type(code).__name__}")
    if isinstance(tests, str | Mapping) or not tests:
        raise ValueError(
            "tests must be a non-empty list of assert strings or of {'stdin', 'stdout'} mappings"
        )
    tests = list(tests)
    # run_python validates allowed_packages (a bare string is refused there, naming the argument).
    run_options = {"timeout": timeout, "memory_mb": memory_mb, "allow_unsandboxed": allow_unsandboxed,
                   "allowed_packages": allowed_packages}  # fmt: skip
    run, arguments = _runner_for(tests, test_setup, candidates, run_options)
    failure = _code_failure(code)
    if failure is not None:
        return CodeCheckResult(False, [TestOutcome(False, failure) for _ in tests], [])
    return run(code, *arguments)


def _runner_for(tests: list, test_setup: str, candidates: Sequence[str] | None, run_options: dict) -> tuple:
    """The run for the tests' style, with its arguments, once every test is checked (errors name the test)."""
    if all(isinstance(test, str) for test in tests):
        _require_text("test_setup", test_setup)
        for index, test in enumerate(tests):
            _require_text(f"test {index}", test)
        return _check_asserts, (tests, test_setup, candidates, run_options)
    if all(isinstance(test, Mapping) for test in tests):
        for index, case in enumerate(tests):
            missing = {"stdin", "stdout"} - set(case)
            if missing or not all(isinstance(case[key], str) for key in ("stdin", "stdout")):
                raise ValueError(
                    f"test case {index} needs str 'stdin' and 'stdout' fields, got keys {sorted(case)}"
                )
            _require_text(f"test case {index} stdin", case["stdin"])
        return _check_io, (tests, run_options)
    raise ValueError("tests mix assert strings and stdin/stdout cases; pass one style per call")


def _require_text(name: str, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} is not valid Unicode text: {error.reason} at index {error.start}") from None
