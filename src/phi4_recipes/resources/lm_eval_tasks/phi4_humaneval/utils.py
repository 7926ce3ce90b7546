"""Prompt and sandboxed grading for HumanEval and HumanEval+ (columns: task_id, prompt, test, entry_point)."""

from __future__ import annotations

from phi4_recipes.verify.answers import extract_code
from phi4_recipes.verify.code_check import check_python

# HumanEval+ runs hundreds of inputs per problem; the budget covers the slowest reference solutions.
TIMEOUT_S = 20.0


def doc_to_text(doc: dict) -> str:
    return (
        "Implement the Python function below so that it does what its docstring says. Reply with the "
        f"complete function in one ```python code block.\n\n```python\n{doc['prompt']}```"
    )


def doc_to_target(doc: dict) -> str:
    return f"{doc['test']}\ncheck({doc['entry_point']})"


def program_for(doc: dict, completion: str) -> str:
    """The problem's prompt (imports, helpers, signature) followed by the model's code block.

    A reply that restates the whole function simply redefines it; one that only gives the body fails, as
    it does in simple-evals.
    """
    return f"{doc['prompt']}\n{extract_code(completion)}\n"


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """pass@1 of the greedy completion, run in the sandbox (never unsandboxed: a missing sandbox is an error)."""
    outcome = check_python(program_for(doc, results[0]), [doc_to_target(doc)], timeout=TIMEOUT_S)
    return {"pass@1": int(outcome.passed)}
