"""Oracles that decide whether a completion is correct: math answers, exact and multiple-choice
matches, and model-written Python run against tests in a sandbox.

Names load on first use (as in ``configs``), so importing the package costs nothing."""

from importlib import import_module

# name -> submodule, imported when the name is first asked for: a math oracle never loads the code sandbox.
_LAZY = {
    "extract_boxed": "answers", "extract_code": "answers", "extract_final_answer": "answers",
    "reference_answer": "answers",
    "choice_equal": "choice", "choice_verdict": "choice", "extract_choice": "choice",
    "CodeCheckResult": "code_check", "TestOutcome": "code_check", "check_python": "code_check",
    "exact_match": "exact", "exact_verdict": "exact", "normalize_answer": "exact",
    "MathVerifierPool": "math_oracle", "math_equal": "math_oracle", "math_equal_many": "math_oracle",
    "math_verdict": "math_oracle",
    "ORACLE_KINDS": "oracles", "Oracle": "oracles", "make_oracle": "oracles",
    "ExecResult": "sandbox", "SandboxUnavailableError": "sandbox", "run_python": "sandbox",
    "sandbox_available": "sandbox",
    "Verdict": "verdict",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ORACLE_KINDS",
    "CodeCheckResult",
    "ExecResult",
    "MathVerifierPool",
    "Oracle",
    "SandboxUnavailableError",
    "TestOutcome",
    "Verdict",
    "check_python",
    "choice_equal",
    "choice_verdict",
    "exact_match",
    "exact_verdict",
    "extract_boxed",
    "extract_choice",
    "extract_code",
    "extract_final_answer",
    "make_oracle",
    "math_equal",
    "math_equal_many",
    "math_verdict",
    "normalize_answer",
    "reference_answer",
    "run_python",
    "sandbox_available",
]
