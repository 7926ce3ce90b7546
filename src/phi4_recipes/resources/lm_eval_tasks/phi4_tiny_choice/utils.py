"""A tiny four-option multiple-choice set: the held-out arithmetic problems with near-miss options.

The options, the prompt and the SFT data's multiple-choice conversations all come from phi4_recipes.data.tiny,
so the model is asked in the format it was taught (a worked answer ending "The answer is B.").
"""

from __future__ import annotations

import datasets

from phi4_recipes.data.tiny import LETTERS, TEST_PROBLEMS, choice_prompt, choice_rows, tiny_datasets
from phi4_recipes.verify.choice import choice_equal

NUM_QUESTIONS = TEST_PROBLEMS


def build_choice_rows(problems: list[dict]) -> list[dict]:
    """One row per problem: question, four numeric options, the correct letter. Seeded per problem id."""
    return [{k: row[k] for k in ("id", "question", "options", "answer")} for row in choice_rows(problems)]


def load_choice_test(**_metadata) -> datasets.DatasetDict:
    # The held-out arithmetic split (data/tiny/arithmetic_test.jsonl), from its generator: no file needed.
    problems = tiny_datasets()["arithmetic_test"][:NUM_QUESTIONS]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(build_choice_rows(problems))})


def doc_to_text(doc: dict) -> str:
    return choice_prompt(doc["question"], doc["options"])


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    # Before this fix the model was never taught to answer with a letter, so every stage scored 0.0 (no letter
    # found); the SFT data now holds multiple-choice conversations in exactly this prompt format.
    return {"accuracy": int(choice_equal(results[0], doc["answer"], letters=LETTERS))}
