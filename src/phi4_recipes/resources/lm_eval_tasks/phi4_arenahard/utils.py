"""Arena-Hard pairwise judging against a fixed baseline answer, in both answer orders."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import datasets

from phi4_recipes.judge.client import ask_judge

BASELINE_ENV = "PHI4_ARENAHARD_BASELINE"

JUDGE_SYSTEM = """You are an impartial judge comparing two AI assistants' answers to the same user prompt.
First write your own answer to the prompt. Then compare both assistants' answers with yours: find and
correct mistakes, and judge which answer is more helpful, relevant, concise and complete. Answer order
and length must not sway you. Finish with exactly one verdict label:
[[A>>B]] A is significantly better, [[A>B]] A is slightly better, [[A=B]] tie,
[[B>A]] B is slightly better, [[B>>A]] B is significantly better."""

JUDGE_PROMPT = """<|User Prompt|>
{prompt}

<|The Start of Assistant A's Answer|>
{answer_a}
<|The End of Assistant A's Answer|>

<|The Start of Assistant B's Answer|>
{answer_b}
<|The End of Assistant B's Answer|>"""

# Score of assistant A for each label.
_A_SCORE = {"A>>B": 1.0, "A>B": 1.0, "A=B": 0.5, "B>A": 0.0, "B>>A": 0.0}
_LABEL = re.compile(r"\[\[([AB][<>=]{1,2}[AB])\]\]")


def _baseline_answers(path: str) -> dict[str, str]:
    answers = {}
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers[str(row["question_id"])] = row["choices"][0]["turns"][0]["content"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
            raise ValueError(f"{path}:{line_no}: not an arena-hard model answer ({err})") from err
    return answers


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """Normalise to `prompt` and `baseline_answer` columns (first turn only, as in Arena-Hard v0.1)."""
    baseline = _baseline_answers(os.environ[BASELINE_ENV]) if os.environ.get(BASELINE_ENV) else None
    if baseline is None and "baseline_answer" not in dataset.column_names:
        raise ValueError(f"ArenaHard needs baseline answers: a 'baseline_answer' column or {BASELINE_ENV}="
                         "<arena-hard-auto model_answer/gpt-4-0314.jsonl>")

    def normalise(doc: dict) -> dict:
        prompt = doc["prompt"] if "prompt" in doc else doc["turns"][0]["content"]
        answer = baseline[str(doc["question_id"])] if baseline is not None else doc["baseline_answer"]
        return {"prompt": prompt, "baseline_answer": answer}

    return dataset.map(normalise)


def parse_verdict(reply: str) -> float | None:
    """Assistant A's score from the last verdict label, or None when the judge gave none."""
    labels = _LABEL.findall(reply)
    return _A_SCORE.get(labels[-1]) if labels else None


def process_results(doc: dict, results: list[str]) -> dict[str, float | None]:
    model, baseline = results[0], doc["baseline_answer"]
    first = parse_verdict(ask_judge(JUDGE_PROMPT.format(prompt=doc["prompt"], answer_a=model, answer_b=baseline),
                                    system=JUDGE_SYSTEM))
    second = parse_verdict(ask_judge(JUDGE_PROMPT.format(prompt=doc["prompt"], answer_a=baseline, answer_b=model),
                                     system=JUDGE_SYSTEM))
    games = [s for s in (first, None if second is None else 1.0 - second) if s is not None]
    return {"win_rate": sum(games) / len(games) if games else None}


def mean_of_valid(scores: list[float | None]) -> float:
    """Mean over questions the judge could score; questions with no usable verdict are left out."""
    valid = [s for s in scores if s is not None]
    return sum(valid) / len(valid) if valid else 0.0
