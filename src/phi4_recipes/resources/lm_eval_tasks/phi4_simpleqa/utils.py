"""SimpleQA grading: the judge reads question, gold answer and the model's answer and replies A, B or C."""

from __future__ import annotations

import re

from phi4_recipes.judge.client import ask_judge

GRADES = {"A": "correct", "B": "incorrect", "C": "not_attempted"}
GRADER_MAX_TOKENS = 16  # the grader answers with one letter

GRADER_PROMPT = """You grade answers to short factual questions against a gold answer.

Grade A (CORRECT) when the predicted answer contains the gold answer's meaning and says nothing that
contradicts it. Spelling variants, missing middle names, extra correct detail and hedging that still
commits to the right answer are fine. Numbers must match to the precision the question asks for.
Grade B (INCORRECT) when the predicted answer states something that contradicts the gold answer, or
commits to a wrong answer, even if it also hedges.
Grade C (NOT_ATTEMPTED) when the predicted answer gives no answer: a refusal, "I don't know", a request
for more context, or only related facts without committing to an answer.

Question: {question}
Gold answer: {gold}
Predicted answer: {predicted}

Reply with a single letter: A, B or C."""


def parse_grade(reply: str) -> str:
    """The first standalone A/B/C in the judge's reply; anything else counts as not attempted."""
    match = re.search(r"\b([ABC])\b", reply)
    return GRADES[match.group(1)] if match else "not_attempted"


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    prompt = GRADER_PROMPT.format(question=doc["problem"], gold=doc["answer"], predicted=results[0])
    reply = ask_judge(prompt, max_new_tokens=GRADER_MAX_TOKENS)
    grade = parse_grade(reply)
    return {name: int(name == grade) for name in GRADES.values()}
