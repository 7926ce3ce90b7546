"""Checkers for the tiny IFEval-style prompts (prompts.jsonl): each instruction id maps to one function."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import datasets

PROMPTS_FILE = Path(__file__).with_name("prompts.jsonl")


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


CHECKS: dict[str, Callable[..., bool]] = {
    "lowercase": lambda text: text == text.lower() and any(c.isalpha() for c in text),
    "uppercase": lambda text: text == text.upper() and any(c.isalpha() for c in text),
    "max_words": lambda text, n: len(_words(text)) <= n,
    "min_words": lambda text, n: len(_words(text)) >= n,
    "include_keywords": lambda text, keywords: all(k.lower() in text.lower() for k in keywords),
    "forbidden_words": lambda text, words: not any(
        re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE) for w in words),
    "no_comma": lambda text: "," not in text,
    "end_phrase": lambda text, phrase: text.strip().endswith(phrase),
    "start_word": lambda text, word: bool(_words(text)) and _words(text)[0].lower() == word.lower(),
    "max_sentences": lambda text, n: 0 < len(_sentences(text)) <= n,
}


def follows(instruction: dict, response: str) -> bool:
    """Whether `response` follows one instruction {"id": ..., "kwargs": {...}}."""
    check = CHECKS.get(instruction["id"])
    if check is None:
        raise KeyError(f"{PROMPTS_FILE}: unknown instruction id '{instruction['id']}' (known: {sorted(CHECKS)})")
    return check(response, **instruction.get("kwargs", {}))


def load_prompts(**_metadata) -> datasets.DatasetDict:
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        for instruction in row["instructions"]:
            if instruction["id"] not in CHECKS:
                raise KeyError(f"{PROMPTS_FILE}: prompt '{row['key']}' uses unknown instruction id '{instruction['id']}'")
    # Instructions are stored as JSON text: their kwargs differ in type from one instruction to the next,
    # which a datasets column cannot hold.
    rows = [{**row, "instructions": json.dumps(row["instructions"])} for row in rows]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc: dict, results: list[str]) -> dict:
    followed = [follows(instruction, results[0]) for instruction in json.loads(doc["instructions"])]
    return {"prompt_level_strict_acc": int(all(followed)), "inst_level_strict_acc": followed}


def mean_over_instructions(items: list[list[bool]]) -> float:
    """IFEval's instruction-level accuracy: every instruction of every prompt counts once."""
    flat = [followed for per_prompt in items for followed in per_prompt]
    return sum(flat) / len(flat)
