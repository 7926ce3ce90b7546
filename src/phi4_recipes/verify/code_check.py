"""Check model-written Python against test cases without trusting anything the model's code says.

Two test styles, as code datasets ship them:

- assert-style (HumanEval, MBPP): strings of Python such as ``"assert add(1, 2) == 3"``. The
  solution runs in one sandbox (``_candidate_server``), the tests in another (``_test_runner``):
  separate interpreters joined only by two pipes. The tests call the solution's functions through
  proxies; arguments go out and return values come back as plain data (``plain_data``), so every
  comparison happens on the trusted side and an ``__eq__`` override never crosses. The test
  process writes exactly one verdict per test, and nothing the solution prints, patches or reads
  (its own program text included) reaches those verdicts;
- stdin/stdout (APPS, CodeContests): ``{"stdin": "...", "stdout": "..."}``; one sandboxed run per
  case, output compared here, line by line ignoring trailing whitespace.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from phi4_recipes.verify._test_runner import SOLUTION_GONE
from phi4_recipes.verify.sandbox import MAX_PROGRAM_BYTES, ExecResult, run_python, start_python

# Stdlib-only modules the sandboxed programs define from source: the sandbox need not have this
# package installed, and the solution's process never holds the test process's code.
_EMBEDDED = {
    "solution": ("plain_data", "_candidate_server"),
    "tests": ("plain_data", "_test_runner"),
}


@cache
def _module_source(name: str) -> str:
    return Path(__file__).with_name(f"{name}.py").read_text(encoding="utf-8")


def _embedded_program(side: str, call: str) -> str:
    """A program that defines ``side``'s modules under their package names, then makes ``call``."""
    modules = [(f"phi4_recipes.verify.{name}", _module_source(name)) for name in _EMBEDDED[side]]
    return (
        "import sys as _sys, types as _types\n"
        f"for _name, _source in {modules!r}:\n"
        "    _sys.modules[_name] = _module = _types.ModuleType(_name)\n"
        "    exec(compile(_source, _name.rsplit('.', 1)[1] + '.py', 'exec'), _module.__dict__)\n"
        f"{call}\n"
    )


# Builtin names a solution may take over: its functions, not the dunders of the tests' namespace
# (``__name__``) nor exception classes (a solution's exception reaches the tests as the builtin).
_OVERRIDABLE_BUILTINS = frozenset(
    name for name in dir(builtins)
    if not name.startswith("_")
    and not (isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), BaseException))
)


def called_names(sources: Sequence[str], solution: str = "") -> list[str]:
    """Names the tests read but never bind: the functions they expect from a solution.

    ``assert add(1, 2) == 3`` gives ``["add"]``; HumanEval's ``def check(candidate): ...`` followed
    by ``check(add)`` gives ``["add"]`` too. A builtin name is the solution's only when the tests call
    nothing else of the solution's and ``solution`` defines that name at module level: then it is the
    function under test (``assert pow(2, 3) == 8`` against ``def pow(a, b): ...``). Beside another
    function under test a builtin stays Python's, the tests' own helper, so a solution that defines
    ``abs`` or ``set`` cannot pass ``assert abs(add(1, 2) - 3) < 1e-9`` with a wrong ``add``.
    Sources that do not parse contribute nothing.
    """
    read, bound = set(), set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
    free = read - bound
    names = free - set(dir(builtins))
    if not names:
        names = free & _OVERRIDABLE_BUILTINS & module_names(solution)
    return sorted(names)


# Scopes of their own: what they bind is not the module's.
_INNER_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
                 ast.DictComp, ast.GeneratorExp)  # fmt: skip


def module_names(code: str) -> set[str]:
    """Names ``code`` binds at module level, as far as its text shows (``def``, assignment, import, ``global``).

    Names bound only at run time (``exec``, ``globals()[...]``, ``from m import *``) are not seen; a
    solution defining a builtin name that way leaves the tests Python's builtin. Code that does not
    parse binds nothing.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias) and node.name != "*":
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        if not isinstance(node, _INNER_SCOPES):
            pending.extend(ast.iter_child_nodes(node))
    return names


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
    code: str, tests: list[str], setup: str, candidates: Sequence[str] | None, run_options: dict
) -> CodeCheckResult:
    names = list(candidates) if candidates is not None else called_names([setup, *tests], code)
    to_solution = os.pipe()
    from_solution = os.pipe()

    def start_side(role: str, entry: str, call: str, fds: tuple[int, int], on_output_limit: str):
        # Each side is its own sandboxed interpreter; they share nothing but the two pipes.
        program = _embedded_program(role, f"from phi4_recipes.verify.{entry}\n{call}")
        return start_python(program, pass_fds=fds, on_output_limit=on_output_limit, **run_options)

    try:
        # The solution's output is no part of the verdict: past the limit it is cut, the run goes on.
        solution = start_side("solution", "_candidate_server import serve",
                              f"serve({code!r}, {to_solution[0]}, {from_solution[1]})", (to_solution[0], from_solution[1]),
                              "truncate")  # fmt: skip
    except BaseException:
        os.close(to_solution[1])
        os.close(from_solution[0])
        raise
    try:
        # The test side's stdout carries the verdicts: a flood there is not cut into a partial verdict list.
        tests_run = start_side("tests", "_test_runner import run_tests",
                               f"run_tests({setup!r}, {tests!r}, {names!r}, {to_solution[1]}, {from_solution[0]})",
                               (to_solution[1], from_solution[0]), "kill").result()  # fmt: skip
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
    """Why ``code`` cannot be run at all (a verdict for every test), or None."""
    try:
        size = len(code.encode())
    except UnicodeEncodeError as error:
        return f"the code is not valid Unicode text ({error.reason} at index {error.start})"
    # Room for the harness around it: the sandbox runs programs of at most MAX_PROGRAM_BYTES.
    if size > MAX_PROGRAM_BYTES // 2:
        return f"the code is {size} bytes; the sandbox runs solutions of at most {MAX_PROGRAM_BYTES // 2}"
    return None


def _check_io(code: str, cases: list[Mapping[str, str]], run_options: dict) -> CodeCheckResult:
    outcomes, executions = [], []
    for case in cases:
        # Output is the answer here: past the limit the run is killed and fails (on_output_limit="kill").
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
    test_setup: str = "",
    candidates: Sequence[str] | None = None,
    allowed_packages: Sequence[str] = (),
) -> CodeCheckResult:
    """Run ``code`` against ``tests`` in the sandbox and report each verdict.

    Args:
        code (str): the solution source.
        tests (Sequence[str] | Sequence[Mapping[str, str]]): assert-style snippets, or stdin/stdout
            cases as mappings with ``"stdin"`` and ``"stdout"`` keys. Not mixed.
        timeout (float): wall-clock seconds for the whole assert run, or for each stdin/stdout case.
        memory_mb (int): address-space limit per process, in MiB.
        allow_unsandboxed (bool): see ``run_python``; never the default.
        test_setup (str): trusted code run on the test side before assert-style tests, for helpers
            the tests use (HumanEval's prompt, with e.g. ``poly`` or ``encode_cyclic``).
        candidates (Sequence[str] | None): the solution's functions the tests call; by default the
            names the tests read but neither they nor ``test_setup`` define (``called_names``).
            A candidate name always means the solution's function, even where ``test_setup``
            defines it too (HumanEval's prompt holds the signature of the function to write).
        allowed_packages (Sequence[str]): import names of installed packages the code may import
            (e.g. ``["numpy"]``), on both sides; beyond these only the standard library is in view.

    Returns:
        CodeCheckResult: ``passed`` is True only when every test passed. Code that cannot run at
        all (a lone surrogate, larger than the sandbox takes) fails every test.

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
    if all(isinstance(test, str) for test in tests):
        _require_text("test_setup", test_setup)
        for index, test in enumerate(tests):
            _require_text(f"test {index}", test)
        run = _check_asserts
        arguments = (tests, test_setup, candidates, run_options)
    elif all(isinstance(test, Mapping) for test in tests):
        for index, case in enumerate(tests):
            missing = {"stdin", "stdout"} - set(case)
            if missing or not all(isinstance(case[key], str) for key in ("stdin", "stdout")):
                raise ValueError(
                    f"test case {index} needs str 'stdin' and 'stdout' fields, got keys {sorted(case)}"
                )
            _require_text(f"test case {index} stdin", case["stdin"])
        run = _check_io
        arguments = (tests, run_options)
    else:
        raise ValueError("tests mix assert strings and stdin/stdout cases; pass one style per call")
    failure = _code_failure(code)
    if failure is not None:
        return CodeCheckResult(False, [TestOutcome(False, failure) for _ in tests], [])
    return run(code, *arguments)


def _require_text(name: str, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} is not valid Unicode text: {error.reason} at index {error.start}") from None
