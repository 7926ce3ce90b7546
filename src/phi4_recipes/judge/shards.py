"""Append-only JSONL shards of judge records, one line per prompt, keyed by the prompt id.

Same contract as the PTS shards: each line is fsynced before the next is written, a killed writer's torn
last line is cut on restart, and prompts go to shards by a hash of their id, so shard k of n holds the
same prompts on every machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from phi4_recipes.io import JsonlAppender, read_complete_jsonl, stable_hash

SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")
_REQUIRED = ("prompt_id", "responses", "pairs", "selected", "settings")


def shard_of(prompt_id: str, num_shards: int) -> int:
    return stable_hash(f"judge:{prompt_id}") % num_shards


def shard_path(output_dir: str | Path, shard_index: int, num_shards: int) -> Path:
    return Path(output_dir) / f"shard-{shard_index:05d}-of-{num_shards:05d}.jsonl"


def _check_record(row: Any) -> None:
    if not isinstance(row, dict) or any(k not in row for k in _REQUIRED):
        raise ValueError(f"not a judge record (needs {list(_REQUIRED)})")


def open_shard(path: str | Path) -> JsonlAppender:
    """The appender for this process's shard; `.rows` holds the records already there."""
    return JsonlAppender(path, _check_record)


def read_records(output_dir: str | Path, skip: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """Whole records of every shard in `output_dir` (in shard-name order), first of each prompt id kept."""
    folder, skipped = Path(output_dir), {p.resolve() for p in skip}
    paths = sorted(p for p in folder.iterdir() if SHARD_NAME.match(p.name)) if folder.is_dir() else []
    seen, records = set(), []
    for path in paths:
        if path.resolve() in skipped:
            continue
        for row in read_complete_jsonl(path, _check_record)[0]:
            if row["prompt_id"] not in seen:
                seen.add(row["prompt_id"])
                records.append(row)
    return records


def check_same_settings(records: list[dict[str, Any]], settings: dict[str, Any], output_dir: str | Path) -> None:
    """Refuse to mix records made with other settings into one folder.

    :raises ValueError: naming the folder, a prompt, and every setting that differs.
    """
    for record in records:
        changed = {k: (record["settings"].get(k), v) for k, v in settings.items() if record["settings"].get(k) != v}
        if changed:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
            raise ValueError(f"{output_dir}: prompt {record['prompt_id']!r} was judged with other settings ({listed}); "
                             "resume with the same settings or use a new output_dir")
