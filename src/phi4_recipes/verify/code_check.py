"""Check model-written Python against test cases, each run inside ``sandbox.run_python``.

Two test styles, as code datasets ship them:

- assert-style (HumanEval, MBPP): strings of Python such as ``"assert add(1, 2) == 3"``; all of
  them run in one sandboxed process after the solution, each counted separately;
- stdin/stdout (APPS, CodeContests): ``{"stdin": "...", "stdout": "..."}``; one sandboxed run per
  case, output compared line by line ignoring trailing whitespace.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from phi4_recipes.verify.sandbox import ExecResult, run_python

# Runs the solution, then each assert test, in one process; the verdict line carries a per-run
# nonce so a solution that prints something verdict-like cannot be mistaken for the harness.
_ASSERT_HARNESS = """\
import json as _json, sys as _sys, traceback as _traceback
_namespace = {{"__name__": "__main__"}}
exec(compile({solution!r}, "solution.py", "exec"), _namespace)
_results = []
for _index, _test in enumerate({tests!r}):
    try:
        exec(compile(_test, "test_%d.py" % _index, "exec"), _namespace)
        _results.append(None)
    except BaseException as _error:
        _results.append("".join(_traceback.format_exception_only(type(_error), _error)).strip()[-500:])
_sys.stdout.flush()
print({nonce!r} + _json.dumps(_results), flush=True)
"""


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
        executions (list[ExecResult]): the sandbox runs (one for assert-style tests, one per stdin case).
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


def _describe_failure(execution: ExecResult) -> str:
    if execution.timed_out:
        return "timed out"
    if execution.output_truncated:
        return "output limit exceeded"
    tail = execution.stderr.strip().splitlines()[-1:] or [f"exit code {execution.exit_code}"]
    return tail[0][-500:]


def _check_asserts(code: str, tests: list[str], run_options: dict) -> CodeCheckResult:
    nonce = f"@@verdict-{secrets.token_hex(8)}@@"
    program = _ASSERT_HARNESS.format(solution=code, tests=tests, nonce=nonce)
    execution = run_python(program, **run_options)
    verdict_lines = [line for line in execution.stdout.splitlines() if line.startswith(nonce)]
    if not execution.ok or not verdict_lines:
        # The solution crashed at import time, timed out, or exited before the tests finished.
        reason = _describe_failure(execution)
        return CodeCheckResult(False, [TestOutcome(False, reason) for _ in tests], [execution])
    errors = json.loads(verdict_lines[-1][len(nonce) :])
    outcomes = [TestOutcome(error is None, error) for error in errors]
    return CodeCheckResult(all(outcome.passed for outcome in outcomes), outcomes, [execution])


def _check_io(code: str, cases: list[Mapping[str, str]], run_options: dict) -> CodeCheckResult:
    outcomes, executions = [], []
    for case in cases:
        execution = run_python(code, stdin=case["stdin"], **run_options)
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
) -> CodeCheckResult:
    """Run ``code`` against ``tests`` in the sandbox and report each verdict.

    Args:
        code (str): the solution source.
        tests (Sequence[str] | Sequence[Mapping[str, str]]): assert-style snippets, or stdin/stdout
            cases as mappings with ``"stdin"`` and ``"stdout"`` keys. Not mixed.
        timeout (float): wall-clock seconds for the whole assert run, or for each stdin/stdout case.
        memory_mb (int): address-space limit per process, in MiB.
        allow_unsandboxed (bool): see ``run_python``; never the default.

    Returns:
        CodeCheckResult: ``passed`` is True only when every test passed.

    Raises:
        ValueError: ``tests`` is empty, mixes styles, or a case lacks ``stdin``/``stdout``.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be str, got {type(code).__name__}")
    if isinstance(tests, str | Mapping) or not tests:
        raise ValueError(
            "tests must be a non-empty list of assert strings or of {'stdin', 'stdout'} mappings"
        )
    tests = list(tests)
    run_options = {"timeout": timeout, "memory_mb": memory_mb, "allow_unsandboxed": allow_unsandboxed}
    if all(isinstance(test, str) for test in tests):
        return _check_asserts(code, tests, run_options)
    if all(isinstance(test, Mapping) for test in tests):
        for index, case in enumerate(tests):
            missing = {"stdin", "stdout"} - set(case)
            if missing or not all(isinstance(case[key], str) for key in ("stdin", "stdout")):
                raise ValueError(
                    f"test case {index} needs str 'stdin' and 'stdout' fields, got keys {sorted(case)}"
                )
        return _check_io(code, tests, run_options)
    raise ValueError("tests mix assert strings and stdin/stdout cases; pass one style per call")
