"""Oracles that decide whether a completion is correct: math answers, exact and multiple-choice
matches, and model-written Python run against tests in a sandbox."""

from phi4_recipes.verify.answers import extract_boxed, extract_code, extract_final_answer, reference_answer
from phi4_recipes.verify.choice import choice_equal, choice_verdict, extract_choice
from phi4_recipes.verify.code_check import CodeCheckResult, TestOutcome, check_python
from phi4_recipes.verify.exact import exact_match, exact_verdict, normalize_answer
from phi4_recipes.verify.math_oracle import MathVerifierPool, math_equal, math_equal_many, math_verdict
from phi4_recipes.verify.oracles import ORACLE_KINDS, Oracle, make_oracle
from phi4_recipes.verify.sandbox import ExecResult, SandboxUnavailableError, run_python, sandbox_available
from phi4_recipes.verify.verdict import Verdict

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
