"""Reading what a model wrote: JSON objects and lists, rubric scores, final answers, code blocks.

Every reader raises ``BadModelOutput`` (a kind of ``BadRow``) when the text does not hold what the prompt
asked for, so the row is reported and counted instead of stopping the run.
"""

from __future__ import annotations

import json
from typing import Any

from phi4_recipes.verify import extract_code, extract_final_answer, normalize_answer


class BadRow(Exception):
    """A row that cannot be processed; ``reason`` is a short counter key, ``detail`` says more."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BadModelOutput(BadRow):
    """``why`` names the rejection class (``no JSON object``, ``score accuracy out of [1, 5]``, ...); the
    detail starts with it, then the start of the reply."""

    def __init__(self, what: str, text: str, why: str):
        super().__init__(f"unparseable_{what}", f"{why}: {text[:200]}")
        self.why = why


def parse_json(text: str, what: str, kind: type = dict) -> Any:
    """The first JSON value of type ``kind`` in ``text`` (models wrap it in prose or fences)."""
    decoder = json.JSONDecoder()
    opener, name = ("{", "JSON object") if kind is dict else ("[", "JSON list")
    for start, char in enumerate(text):
        if char != opener:
            continue
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, kind):
            return value
    raise BadModelOutput(what, text, f"malformed {name}" if opener in text else f"no {name}")


def parse_scores(text: str, what: str, keys: tuple[str, ...], low: float, high: float) -> dict[str, float]:
    """The rubric scores ``keys`` from a JSON reply, each a number in [low, high]; anything else is bad."""
    found = parse_json(text, what)
    scores = {}
    for key in keys:
        value = found.get(key)
        if key not in found:
            raise BadModelOutput(what, text, f"no score {key}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadModelOutput(what, text, f"score {key} not a number")
        if not low <= value <= high:
            raise BadModelOutput(what, text, f"score {key} out of [{low:g}, {high:g}]")
        scores[key] = float(value)
    return scores


def final_answer(text: str) -> str | None:
    """The reply's final answer, normalised so that "42." and " 42" vote together; None when there is none."""
    answer = extract_final_answer(text)
    return normalize_answer(answer) or None if answer is not None else None


def code_block(text: str, what: str) -> str:
    code = extract_code(text).strip()
    if not code:
        raise BadModelOutput(what, text, "no code")
    return code
