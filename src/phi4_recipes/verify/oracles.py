"""One entry point for "is this completion correct?", picked by a dataset row's oracle kind.

PTS, judge-guided DPO, synthetic-data filters and evaluation all call
``make_oracle(kind, reference, **options)(completion) -> bool``; ``oracle.verdict(completion)`` says why
a completion failed. No content of a completion makes an oracle raise: a completion longer than
``MAX_COMPLETION_CHARS`` is refused unread, and every other one gets a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from phi4_recipes.verify.answers import extract_code
from phi4_recipes.verify.choice import DEFAULT_LETTERS, choice_label, choice_verdict
from phi4_recipes.verify.exact import exact_match, exact_verdict
from phi4_recipes.verify.limits import completion_too_long
from phi4_recipes.verify.math_oracle import MathVerifierPool, math_verdict
from phi4_recipes.verify.verdict import Verdict

ORACLE_KINDS = ("math", "exact", "choice", "code")


class Oracle:
    """``oracle(completion) -> bool``, and ``oracle.verdict(completion) -> Verdict`` with the reason.

    Args:
        kind (str): one of ``ORACLE_KINDS``.
        judge (Callable[[str], Verdict]): decides one completion.
    """

    def __init__(self, kind: str, judge: Callable[[str], Verdict]):
        self.kind, self._judge = kind, judge

    def __call__(self, completion: str) -> bool:
        return self.verdict(completion).passed

    def verdict(self, completion: str) -> Verdict:
        if not isinstance(completion, str):
            raise TypeError(f"expected the completion as str, got {type(completion).__name__}")
        return self._judge(completion)

    def __repr__(self) -> str:
        return f"Oracle({self.kind!r})"


def _code_verdict(
    completion: str, *, tests: list, timeout: float, memory_mb: int, allow_unsandboxed: bool,
    allowed_packages: tuple[str, ...],
) -> Verdict:
    too_long = completion_too_long(completion)
    if too_long is not None:
        return Verdict(False, too_long)
    # Imported here: the code sandbox (a dozen modules) loads only where a code oracle runs, not for math.
    from phi4_recipes.verify.code_check import check_python

    result = check_python(
        extract_code(completion), tests, timeout=timeout, memory_mb=memory_mb, allow_unsandboxed=allow_unsandboxed,
        allowed_packages=allowed_packages,
    )
    failed = next((outcome for outcome in result.outcomes if not outcome.passed), None)
    return Verdict(True) if result.passed else Verdict(False, failed.error if failed else "no test passed")


def make_oracle(kind: str, reference: Any, **options: Any) -> Oracle:
    """Return a function that says whether a completion answers correctly.

    Args:
        kind (str): one of ``ORACLE_KINDS``:
            - ``"math"``: reference is the gold answer or a solution ending in ``\\boxed{}``;
              options ``timeout`` (float s), ``pool`` (MathVerifierPool).
            - ``"exact"``: reference is a str or list of accepted str; option ``normalize`` (bool).
            - ``"choice"``: reference is a letter ("B", "(B)") or 0-based index; option ``letters`` (str).
            - ``"code"``: reference is a list of assert strings or of {"stdin", "stdout"} dicts; the
              completion's last ```python block (or whole text) is run in the sandbox; options
              ``timeout`` (float s), ``memory_mb`` (int), ``allow_unsandboxed`` (bool),
              ``allowed_packages`` (list of import names the code may import beyond the standard
              library, e.g. ``[numpy]``; none by default).
        reference (Any): the gold answer in the form ``kind`` expects; checked here, not per call.
        **options (Any): the kind's options above; any other name is an error.

    Returns:
        Oracle: ``oracle(completion) -> bool``; ``oracle.verdict(completion)`` gives the reason too.

    Raises:
        ValueError: unknown kind or option, or a malformed reference.
    """
    if kind not in _OPTIONS:
        raise ValueError(f"unknown oracle kind {kind!r}; expected one of {ORACLE_KINDS}")
    unknown = set(options) - _OPTIONS[kind]
    if unknown:
        raise ValueError(
            f"oracle kind {kind!r} takes options {sorted(_OPTIONS[kind])}, got unknown {sorted(unknown)}"
        )
    return Oracle(kind, _BUILDERS[kind](reference, options))


# Each kind's options, and the function that checks its reference once and returns its verdict function.
_OPTIONS = {
    "math": {"timeout", "pool"},
    "exact": {"normalize"},
    "choice": {"letters"},
    "code": {"timeout", "memory_mb", "allow_unsandboxed", "allowed_packages"},
}


def _math_judge(reference: Any, options: dict[str, Any]) -> Callable[[str], Verdict]:
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError("math oracle needs the reference answer as a non-empty str")
    pool = options.get("pool")
    if pool is not None and not isinstance(pool, MathVerifierPool):
        raise TypeError("pool must be a MathVerifierPool")
    return partial(_math_verdict, reference=reference, timeout=options.get("timeout"), pool=pool)


def _exact_judge(reference: Any, options: dict[str, Any]) -> Callable[[str], Verdict]:
    exact_match("", reference)  # validates the reference now rather than at the first completion
    return partial(_exact_verdict, reference=reference, normalize=options.get("normalize", True))


def _choice_judge(reference: Any, options: dict[str, Any]) -> Callable[[str], Verdict]:
    letters = options.get("letters", DEFAULT_LETTERS)
    return partial(_choice_verdict, reference=choice_label(reference, letters), letters=letters)


def _code_judge(reference: Any, options: dict[str, Any]) -> Callable[[str], Verdict]:
    if not isinstance(reference, list | tuple) or not reference:
        raise ValueError("code oracle needs the reference as a non-empty list of tests")
    packages = options.get("allowed_packages") or ()
    if not isinstance(packages, list | tuple) or not all(isinstance(name, str) for name in packages):
        raise ValueError(f"code oracle option allowed_packages must be a list of import names, got {packages!r}")
    return partial(_code_verdict, tests=list(reference), timeout=options.get("timeout", 5.0),
                   memory_mb=options.get("memory_mb", 512), allow_unsandboxed=options.get("allow_unsandboxed", False),
                   allowed_packages=tuple(packages))


_BUILDERS = {"math": _math_judge, "exact": _exact_judge, "choice": _choice_judge, "code": _code_judge}


def _math_verdict(completion: str, *, reference: str, timeout: float | None, pool: MathVerifierPool | None) -> Verdict:
    return math_verdict(completion, reference, timeout=timeout, pool=pool)


def _exact_verdict(completion: str, *, reference: Any, normalize: bool) -> Verdict:
    return exact_verdict(completion, reference, normalize=normalize)


def _choice_verdict(completion: str, *, reference: str, letters: str) -> Verdict:
    return choice_verdict(completion, reference, letters)
