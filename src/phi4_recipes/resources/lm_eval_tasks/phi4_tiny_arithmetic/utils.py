"""Data loading and grading for the tiny arithmetic task."""

from __future__ import annotations

import datasets

from phi4_recipes.data.tiny import tiny_datasets
from phi4_recipes.verify.math_oracle import math_equal


def load_arithmetic_test(**_metadata) -> datasets.DatasetDict:
    """The held-out split as a DatasetDict with one `test` split (lm-eval passes task metadata; unused).

    Built by the generator that writes data/tiny/arithmetic_test.jsonl (the same rows), so the task needs
    no file outside the installed package.
    """
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(tiny_datasets()["arithmetic_test"])})


def load_arithmetic_validation(**_metadata) -> datasets.DatasetDict:
    """The validation split (data/tiny/arithmetic_validation.jsonl), under lm-eval's `test` split name."""
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(tiny_datasets()["arithmetic_validation"])})


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    """1 when the completion's final answer equals the reference number, else 0."""
    return {"accuracy": int(math_equal(results[0], doc["answer"]))}
