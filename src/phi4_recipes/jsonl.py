"""JSON Lines in and out, the way every stage reads and writes its records: a bad line names `path:line`,
writes are atomic (or appended and flushed line by line), and a killed run's unfinished last line is told apart
from a damaged one, so a resumed run means the same thing everywhere."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed row) for each non-blank line; a bad line raises naming `path:line`.

    Bytes that are not UTF-8 are reported the same way, with the line, instead of a bare UnicodeDecodeError.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{line_number}: not valid UTF-8 ({err.reason} at byte {err.start})") from err
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({err})") from err


def jsonl_line(row: Any) -> str:
    """One compact JSON Lines record (UTF-8 kept as is), newline included."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[Any], *, atomic: bool = True, fsync: bool = True) -> Path:
    """Write ``rows`` as JSON Lines.

    Args:
        path: the file; its folder is created.
        rows: JSON-serialisable rows.
        atomic: write a temporary file beside it and rename, so a reader (or another shard process
            exporting into the same folder) never sees a half-written file.
        fsync: flush to disk before returning (and before the rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if atomic else path
    with open(target, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(jsonl_line(row))
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    if atomic:
        os.replace(target, path)
    return path


class JsonlAppender:
    """Appends rows to a JSON Lines file, each durably on disk before ``append`` returns.

    Opening it drops a killed writer's torn last line, so appends start on a fresh line; the complete rows
    already there are in ``rows``.

    Args:
        path: the file (created with its folder if missing).
        validate: called on every parsed row already in the file; raise ValueError to reject it.
    """

    def __init__(self, path: str | Path, validate=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows, complete = read_complete_jsonl(self.path, validate)
        self.truncated_bytes = (self.path.stat().st_size - complete) if self.path.exists() else 0
        if self.truncated_bytes:
            with open(self.path, "r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())
        self._handle = open(self.path, "ab")

    def append(self, row: Any) -> None:
        self._handle.write(jsonl_line(row).encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.rows.append(row)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_complete_jsonl(path: str | Path, validate=None) -> tuple[list[Any], int]:
    """Rows of an append-only JSON Lines file, and the byte length their complete lines take.

    A last line without its newline, or one that is not valid JSON, is a killed writer's fragment and is
    left out. Any other bad line is damage a writer of ours did not cause, so it raises naming the line.
    ``validate(row)`` may raise ValueError to reject a row; the error then names the file and line.
    """
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b""
    rows, offset = [], 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        is_last_line = number == len(lines) - 1 and lines[-1] == b""
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if is_last_line:
                break  # a torn write whose newline made it to disk before the rest did
            raise ValueError(f"{path}, line {number}: not valid JSON ({err}); the file is damaged") from err
        if validate is not None:
            try:
                validate(row)
            except ValueError as err:
                raise ValueError(f"{path}, line {number}: {err}") from err
        rows.append(row)
        offset += len(line) + 1
    return rows, offset
