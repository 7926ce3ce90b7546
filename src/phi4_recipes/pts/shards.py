"""Append-only JSONL shards of PTS results: one line per question, safe to kill at any moment.

Each line is written, flushed and fsynced before the next question starts, so a killed run loses at
most the question it was working on, and that question's line is either whole or a fragment at the end
of the file. On restart the fragment is cut off and every question with a whole line is skipped.

Questions go to shards by a hash of their id (not their row order), so shard ``k`` of ``n`` holds the
same questions on every machine and in every run, and the ``n`` shards partition the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")


def shard_of(question_id: str, num_shards: int) -> int:
    """The shard a question belongs to: stable across runs, machines and Python hash seeds."""
    digest = hashlib.blake2b(str(question_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def shard_path(output_dir: str | Path, shard_index: int, num_shards: int) -> Path:
    return Path(output_dir) / f"shard-{shard_index:05d}-of-{num_shards:05d}.jsonl"


def shard_files(output_dir: str | Path) -> list[Path]:
    """Every shard file in ``output_dir``, whatever ``num_shards`` wrote it, in name order."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and SHARD_NAME.match(p.name))


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """Whole records of a shard file, and the byte length they take.

    A last line without its newline, or one that is not valid JSON, is a killed writer's fragment and
    is left out. Any other bad line is damage this module did not cause, so it raises naming the line.

    :returns: ``(records, complete_bytes)``; bytes past ``complete_bytes`` are the fragment, if any.
    """
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b""
    records, offset = [], 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        is_last_line = number == len(lines) - 1 and lines[-1] == b""
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if is_last_line:
                break  # a torn write whose newline made it to disk before the rest did
            raise ValueError(f"{path}, line {number}: not valid JSON ({err}); the shard is damaged") from err
        if not isinstance(record, dict) or "question_id" not in record:
            raise ValueError(f"{path}, line {number}: not a PTS question record (no 'question_id')")
        records.append(record)
        offset += len(line) + 1
    return records, offset


class ShardWriter:
    """Appends question records to one shard file, each durably on disk before ``append`` returns.

    Opening it drops a killed writer's fragment from the end of the file, so appends start on a fresh line.

    :param path: the shard file (created with its folder if missing).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records, complete = read_records(self.path)
        self.truncated_bytes = (self.path.stat().st_size - complete) if self.path.exists() else 0
        if self.truncated_bytes:
            with open(self.path, "r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())
        self.records = records
        self._handle = open(self.path, "ab")

    @property
    def done_ids(self) -> set[str]:
        return {r["question_id"] for r in self.records}

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        self._handle.write(line.encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records.append(record)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_same_settings(records: list[dict[str, Any]], settings: dict[str, Any], output_dir: str | Path) -> None:
    """Refuse to add records made with other settings to ``output_dir``: its pairs would mix two runs.

    :raises ValueError: naming the folder and every setting that differs.
    """
    for record in records:
        old = record.get("settings", {})
        changed = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if changed:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
            raise ValueError(f"{output_dir}: question {record['question_id']!r} was searched with other settings "
                             f"({listed}); resume with the same settings or use a new output_dir")


def read_all_records(output_dir: str | Path, skip: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """Records of every shard file in ``output_dir``, first occurrence of each question id kept.

    Other processes may be writing these files; their unfinished last lines are ignored, never cut.
    """
    skipped = {Path(p).resolve() for p in skip}
    seen, merged = set(), []
    for path in shard_files(output_dir):
        if path.resolve() in skipped:
            continue
        for record in read_records(path)[0]:
            if record["question_id"] not in seen:
                seen.add(record["question_id"])
                merged.append(record)
    return merged
