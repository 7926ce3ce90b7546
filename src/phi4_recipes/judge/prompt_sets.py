"""The prompts a judge run answers: a dataset's rows, plus the built-in safety/RAI set.

A row with a reference answer (math, multiple choice, code tests) is verified by an oracle (rejection
sampling); a row without one is judged. RAI rows are judged with the refusal-aware rubric.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from phi4_recipes.verify import ORACLE_KINDS

BUILTIN_RAI_PROMPTS = "rai_prompts_v1.jsonl"
CATEGORIES = ("general", "rai")


@dataclass(frozen=True)
class JudgePrompt:
    """One prompt. `oracle` and `reference` are set together (rejection sampling) or both None (judged)."""

    id: str
    messages: list[dict[str, str]]
    category: str = "general"
    oracle: str | None = None
    reference: Any = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verifiable(self) -> bool:
        return self.oracle is not None


def read_prompt_rows(rows: Iterable[Mapping[str, Any]], source: str, *, id_field: str | None = "id",
                     question_field: str = "question", messages_field: str = "messages",
                     answer_field: str | None = "answer", oracle: str | None = None, oracle_field: str | None = None,
                     category_field: str = "category", max_prompts: int | None = None) -> list[JudgePrompt]:
    """Rows -> JudgePrompts; a `messages` column wins over `question` (its last assistant turn is dropped).

    :raises ValueError: a duplicate id, an unknown oracle kind or category, or a row with neither field.
    """
    prompts, seen = [], set()
    for index, row in enumerate(rows):
        if max_prompts is not None and index >= max_prompts:
            break
        where = f"{source}, row {index}"
        prompt_id = str(row[id_field]) if id_field else f"{source}#{index}"
        if prompt_id in seen:
            raise ValueError(f"{where}: duplicate id {prompt_id!r}")
        seen.add(prompt_id)
        messages = _messages_of(row, question_field, messages_field, where)
        kind = row.get(oracle_field) if oracle_field else oracle
        reference = row.get(answer_field) if (answer_field and kind) else None
        if kind is not None and kind not in ORACLE_KINDS:
            raise ValueError(f"{where}: oracle {kind!r} is not one of {ORACLE_KINDS}")
        if kind is not None and reference in (None, "", []):
            kind = None  # no reference: the judge decides this row
        category = str(row.get(category_field) or "general")
        if category not in CATEGORIES:
            raise ValueError(f"{where}: category {category!r} is not one of {CATEGORIES}")
        prompts.append(JudgePrompt(prompt_id, messages, category, kind, reference if kind else None, source))
    return prompts


def builtin_rai_prompts() -> list[JudgePrompt]:
    """The shipped safety/RAI prompts: harmful requests to decline and harmless look-alikes to help with."""
    text = (resources.files("phi4_recipes.judge") / "prompts" / BUILTIN_RAI_PROMPTS).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return read_prompt_rows(rows, f"builtin:{BUILTIN_RAI_PROMPTS}", answer_field=None)


def _messages_of(row: Mapping[str, Any], question_field: str, messages_field: str, where: str) -> list[dict]:
    messages = row.get(messages_field)
    if messages:
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()  # an SFT row's answer: the responders write their own
        if messages:
            return messages
    question = row.get(question_field)
    if not question:
        raise ValueError(f"{where}: needs a non-empty {messages_field!r} or {question_field!r} field")
    return [{"role": "user", "content": str(question)}]
