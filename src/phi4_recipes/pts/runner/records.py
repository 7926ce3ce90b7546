"""The record of one question as a shard line holds it: what was sampled, what was searched, with what.

These dataclasses are what the runner, the export and the plots pass around; ``to_json`` / ``from_json``
convert to and from a shard line's JSON, whose shape (key names and order) they keep exactly, so shards
written before these types existed still read and a re-run writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phi4_recipes.producers import read_records

from ..result import PTSResult


def _require(data: Any, keys: tuple[str, ...], what: str) -> None:
    # A valid JSON line that is not a record (or lost keys) should name what is missing, not raise KeyError.
    if not isinstance(data, dict):
        raise ValueError(f"not a PTS {what} (a JSON object was expected, got {type(data).__name__})")
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"not a PTS {what} (no {', '.join(repr(k) for k in missing)})")


@dataclass
class ResponseRecord:
    """One searched response of a question.

    :param response_index: its index among the question's sampled responses.
    :param stopped: whether the model ended it with a stop token (cut before the search).
    :param result: what the search found.
    """

    response_index: int
    stopped: bool
    result: PTSResult

    def to_json(self) -> dict[str, Any]:
        return {"response_index": self.response_index, "stopped": self.stopped, "result": self.result.to_dict()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResponseRecord:
        _require(data, ("response_index", "stopped", "result"), "response record")
        return cls(data["response_index"], data["stopped"], PTSResult.from_dict(data["result"]))


@dataclass
class QuestionRecord:
    """Everything a run keeps about one question (one shard line).

    :param question_id: the question's stable id.
    :param status: ``"searched"`` (some response was searched), ``"filtered"`` (p(query) outside
        [p_min, p_max]) or ``"no_response"`` (every sampled response was empty or cut at ``max_new_tokens``).
    :param p_query: p(success | query) from the first searched response; ``None`` when none was searched.
    :param sampled_correct: the oracle's verdict on each sampled response, in sample order.
    :param responses: the searched responses.
    :param rollouts: rollouts of all its searches.
    :param model: the model that answered.
    :param tokenizer: the tokenizer of the ids (what the export decodes with).
    :param run_seed: the run's seed.
    :param seed: the question's search seed (derived from ``run_seed`` and the id).
    :param settings: the run options that shape this record; a resumed run must use the same.
    :param seconds: wall-clock time spent on the question.
    """

    question_id: str
    status: str
    p_query: float | None
    sampled_correct: list[bool]
    responses: list[ResponseRecord]
    rollouts: int
    model: str
    tokenizer: str
    run_seed: int
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def pivot_count(self) -> int:
        return sum(len(response.result.pivots) for response in self.responses)

    def to_json(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "status": self.status,
            "p_query": self.p_query,
            "sampled_correct": list(self.sampled_correct),
            "responses": [response.to_json() for response in self.responses],
            "rollouts": self.rollouts,
            "model": self.model,
            "tokenizer": self.tokenizer,
            "run_seed": self.run_seed,
            "seed": self.seed,
            "settings": self.settings,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionRecord:
        """A shard line's record; a line that is not one raises ValueError naming the missing keys."""
        _require(data, ("question_id", "status", "p_query", "sampled_correct", "responses", "rollouts", "model",
                        "tokenizer", "run_seed", "seed"), "question record")
        return cls(
            question_id=data["question_id"],
            status=data["status"],
            p_query=data["p_query"],
            sampled_correct=list(data["sampled_correct"]),
            responses=[ResponseRecord.from_json(r) for r in data["responses"]],
            rollouts=data["rollouts"],
            model=data["model"],
            tokenizer=data["tokenizer"],
            run_seed=data["run_seed"],
            seed=data["seed"],
            settings=data.get("settings", {}),
            seconds=data.get("seconds", 0.0),
        )


def check_question_record(row: Any) -> None:
    """A shard line's check (producers.read_records): raises ValueError naming what a question record lacks."""
    QuestionRecord.from_json(row)


def read_question_records(output_dir: str | Path) -> list[QuestionRecord]:
    """The records of every shard in ``output_dir``, first of each question id kept (producers.read_records)."""
    return [QuestionRecord.from_json(row) for row in read_records(output_dir, "question_id", check_question_record)]
