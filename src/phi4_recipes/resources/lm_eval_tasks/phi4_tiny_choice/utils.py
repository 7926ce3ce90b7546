"""A tiny four-option multiple-choice set derived from the held-out arithmetic split."""

from __future__ import annotations

import random

import datasets

from phi4_recipes.data.tiny import tiny_datasets
from phi4_recipes.verify.choice import choice_equal

LETTERS = "ABCD"
NUM_QUESTIONS = 40


def _options(answer: int, rng: random.Random) -> list[int]:
    # Near-miss distractors (off by a little) so the options look alike, as in real multiple-choice sets.
    distractors = set()
    while len(distractors) < len(LETTERS) - 1:
        candidate = answer + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])
        if candidate >= 0 and candidate != answer:
            distractors.add(candidate)
    options = [answer, *sorted(distractors)]
    rng.shuffle(options)
    return options


def build_choice_rows(problems: list[dict]) -> list[dict]:
    """One row per problem: question, four numeric options, the correct letter. Seeded per problem id."""
    rows = []
    for problem in problems[:NUM_QUESTIONS]:
        answer = int(problem["answer"])
        options = _options(answer, random.Random(problem["id"]))
        rows.append({"id": problem["id"], "question": problem["question"], "options": [str(o) for o in options],
                     "answer": LETTERS[options.index(answer)]})
    return rows


def load_choice_test(**_metadata) -> datasets.DatasetDict:
    # The held-out arithmetic split (data/tiny/arithmetic_test.jsonl), from its generator: no file needed.
    problems = tiny_datasets()["arithmetic_test"]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(build_choice_rows(problems))})


def doc_to_text(doc: dict) -> str:
    options = "\n".join(f"{letter}) {option}" for letter, option in zip(LETTERS, doc["options"]))
    return f"{doc['question']}\n\n{options}\n\nAnswer with the letter of the correct option."


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    return {"accuracy": int(choice_equal(results[0], doc["answer"], letters=LETTERS))}
