"""Data loading and grading for the tiny arithmetic task."""

from __future__ import annotations

from pathlib import Path

import datasets

from phi4_recipes.verify.math_oracle import math_equal

# eval/tasks/phi4_tiny_arithmetic/utils.py -> repository root
TEST_FILE = Path(__file__).resolve().parents[3] / "data" / "tiny" / "arithmetic_test.jsonl"


def load_arithmetic_test(**_metadata) -> datasets.DatasetDict:
    """The held-out split as a DatasetDict with one `test` split (lm-eval passes task metadata; unused)."""
    if not TEST_FILE.is_file():
        raise FileNotFoundError(f"tiny arithmetic test split not found at {TEST_FILE}; "
                                "regenerate it with: python -m phi4_recipes.data.tiny data/tiny")
    return datasets.load_dataset("json", data_files={"test": str(TEST_FILE)})


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """1 when the completion's final answer equals the reference number, else 0."""
    return {"accuracy": int(math_equal(results[0], doc["answer"]))}
