"""One entry point for "is this completion correct?", picked by a dataset row's oracle kind.

PTS, judge-guided DPO, synthetic-data filters and evaluation all call
``make_oracle(kind, reference, **options)(completion) -> bool``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from phi4_recipes.verify.answers import extract_code
from phi4_recipes.verify.choice import DEFAULT_LETTERS, choice_equal, choice_label
from phi4_recipes.verify.code_check import check_python
from phi4_recipes.verify.exact import exact_match
from phi4_recipes.verify.math_oracle import MathVerifierPool, math_equal

Oracle = Callable[[str], bool]
ORACLE_KINDS = ("math", "exact", "choice", "code")


def _code_oracle(
    completion: str, *, tests: list, timeout: float, memory_mb: int, allow_unsandboxed: bool,
    allowed_packages: tuple[str, ...],
) -> bool:
    code = extract_code(completion)
    return check_python(
        code, tests, timeout=timeout, memory_mb=memory_mb, allow_unsandboxed=allow_unsandboxed,
        allowed_packages=allowed_packages,
    ).passed


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
        Callable[[str], bool]: ``oracle(completion) -> bool``.

    Raises:
        ValueError: unknown kind or option, or a malformed reference.
    """
    allowed = {
        "math": {"timeout", "pool"},
        "exact": {"normalize"},
        "choice": {"letters"},
        "code": {"timeout", "memory_mb", "allow_unsandboxed", "allowed_packages"},
    }
    if kind not in allowed:
        raise ValueError(f"unknown oracle kind {kind!r}; expected one of {ORACLE_KINDS}")
    unknown = set(options) - allowed[kind]
    if unknown:
        raise ValueError(
            f"oracle kind {kind!r} takes options {sorted(allowed[kind])}, got unknown {sorted(unknown)}"
        )

    if kind == "math":
        if not isinstance(reference, str) or not reference.strip():
            raise ValueError("math oracle needs the reference answer as a non-empty str")
        pool = options.get("pool")
        if pool is not None and not isinstance(pool, MathVerifierPool):
            raise TypeError("pool must be a MathVerifierPool")
        return partial(_math_oracle, reference=reference, timeout=options.get("timeout"), pool=pool)
    if kind == "exact":
        exact_match("", reference)  # validates the reference now rather than at the first completion
        return partial(_exact_oracle, reference=reference, normalize=options.get("normalize", True))
    if kind == "choice":
        letters = options.get("letters", DEFAULT_LETTERS)
        return partial(_choice_oracle, reference=choice_label(reference, letters), letters=letters)
    if not isinstance(reference, list | tuple) or not reference:
        raise ValueError("code oracle needs the reference as a non-empty list of tests")
    packages = options.get("allowed_packages") or ()
    if not isinstance(packages, list | tuple) or not all(isinstance(name, str) for name in packages):
        raise ValueError(f"code oracle option allowed_packages must be a list of import names, got {packages!r}")
    return partial(
        _code_oracle,
        tests=list(reference),
        timeout=options.get("timeout", 5.0),
        memory_mb=options.get("memory_mb", 512),
        allow_unsandboxed=options.get("allow_unsandboxed", False),
        allowed_packages=tuple(packages),
    )


def _math_oracle(
    completion: str, *, reference: str, timeout: float | None, pool: MathVerifierPool | None
) -> bool:
    return math_equal(completion, reference, timeout=timeout, pool=pool)


def _exact_oracle(completion: str, *, reference: Any, normalize: bool) -> bool:
    return exact_match(completion, reference, normalize=normalize)


def _choice_oracle(completion: str, *, reference: str, letters: str) -> bool:
    return choice_equal(completion, reference, letters)
