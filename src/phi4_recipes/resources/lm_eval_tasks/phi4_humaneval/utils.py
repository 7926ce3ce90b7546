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


def grade(doc: dict, completion: str):
    """Run the completion's program against the problem's test, each in its own sandbox.

    The test runs on the trusted side with the prompt's helpers (``poly``, ``encode_cyclic``...)
    defined there, and reaches only the entry point of the model's program, through a pipe that
    carries plain data; so neither the verdict nor the helpers the test relies on can be forged.
    Never unsandboxed: a missing sandbox is an error.
    """
    return check_python(program_for(doc, completion), [doc_to_target(doc)], timeout=TIMEOUT_S,
                        test_setup=doc["prompt"], candidates=[doc["entry_point"]])  # fmt: skip


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """pass@1 of the greedy completion."""
    return {"pass@1": int(grade(doc, results[0]).passed)}
