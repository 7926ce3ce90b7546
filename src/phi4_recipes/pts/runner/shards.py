"""Append-only JSONL shards of PTS results: one line per question, safe to kill at any moment.

Each line is written, flushed and fsynced before the next question starts, so a killed run loses at
most the question it was working on, and that question's line is either whole or a fragment at the end
of the file. On restart the fragment is cut off and every question with a whole line is skipped.

Questions go to shards by a hash of their id (not their row order), so shard ``k`` of ``n`` holds the
same questions on every machine and in every run, and the ``n`` shards partition the dataset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from phi4_recipes.io import JsonlAppender, read_complete_jsonl, stable_hash

from .records import QuestionRecord

SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")


def shard_of(question_id: str, num_shards: int) -> int:
    """The shard a question belongs to: stable across runs, machines and Python hash seeds."""
    return stable_hash(str(question_id), byteorder="big") % num_shards


def shard_path(output_dir: str | Path, shard_index: int, num_shards: int) -> Path:
    return Path(output_dir) / f"shard-{shard_index:05d}-of-{num_shards:05d}.jsonl"


def shard_files(output_dir: str | Path) -> list[Path]:
    """Every shard file in ``output_dir``, whatever ``num_shards`` wrote it, in name order."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and SHARD_NAME.match(p.name))


def _check_record(row: Any) -> None:
    QuestionRecord.from_json(row)


def read_shard(path: str | Path) -> list[QuestionRecord]:
    """Whole records of a shard file; a killed writer's unfinished last line is left out (never cut).

    :raises ValueError: a damaged line before the last, or a line that is not a question record, naming
        the file and the line.
    """
    rows, _ = read_complete_jsonl(path, _check_record)
    return [QuestionRecord.from_json(row) for row in rows]


def open_shard(path: str | Path) -> tuple[JsonlAppender, list[QuestionRecord]]:
    """The shard file this process appends to (``append(record.to_json())``), and the records already in it.

    A killed writer's unfinished last line is cut first; the appender's ``truncated_bytes`` says how much.
    """
    appender = JsonlAppender(path, _check_record)
    return appender, [QuestionRecord.from_json(row) for row in appender.rows]


def check_same_settings(records: list[QuestionRecord], settings: dict[str, Any], output_dir: str | Path) -> None:
    """Refuse to add records made with other settings to ``output_dir``: its pairs would mix two runs.

    :raises ValueError: naming the folder and every setting that differs.
    """
    for record in records:
        old = record.settings
        changed = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if changed:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
            raise ValueError(f"{output_dir}: question {record.question_id!r} was searched with other settings "
                             f"({listed}); resume with the same settings or use a new output_dir")


def read_all_records(output_dir: str | Path, skip: Iterable[Path] = ()) -> list[QuestionRecord]:
    """Records of every shard file in ``output_dir``, first occurrence of each question id kept.

    Other processes may be writing these files; their unfinished last lines are ignored, never cut.
    """
    skipped = {Path(p).resolve() for p in skip}
    seen, merged = set(), []
    for path in shard_files(output_dir):
        if path.resolve() in skipped:
            continue
        for record in read_shard(path):
            if record.question_id not in seen:
                seen.add(record.question_id)
                merged.append(record)
    return merged
