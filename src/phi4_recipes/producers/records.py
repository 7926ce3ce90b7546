"""Records on disk: one append-only JSONL shard per datatrove task, each line a record keyed by a stable row id.

Each line is fsynced before the next row starts (``io.JsonlAppender``), so a task killed at any moment loses at
most the row it was working on, as a torn last line that the next run cuts off. A row whose id any shard of
the folder holds is never redone, so a rerun writes nothing twice, whatever task count wrote the folder.
Rows go to tasks by a hash of their id (not their row order): task ``k`` of ``n`` holds the same rows on
every machine and in every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phi4_recipes.hashing import stable_hash
from phi4_recipes.jsonl import read_complete_jsonl
from phi4_recipes.recipe_checks import RecipeError

SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})\.jsonl$")
SETTINGS_FILE = "settings.json"


def task_of(row_id: str, tasks: int) -> int:
    """The task (datatrove rank) a row belongs to: stable across runs, machines and Python hash seeds."""
    return stable_hash(str(row_id)) % tasks


def shard_path(output_dir: str | Path, rank: int, tasks: int) -> Path:
    return Path(output_dir) / f"shard-{rank:05d}-of-{tasks:05d}.jsonl"


def shard_files(output_dir: str | Path) -> list[Path]:
    """Every shard file in ``output_dir``, whatever task count wrote it, in name order."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and SHARD_NAME.match(p.name))


def id_checker(id_key: str, check: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """A line validator: the record is a mapping with a string ``id_key``, then the producer's own ``check``."""
    def validate(row: Any) -> None:
        if not isinstance(row, dict) or not isinstance(row.get(id_key), str):
            raise ValueError(f"not a record (no string '{id_key}')")
        if check is not None:
            check(row)
    return validate


def read_records(output_dir: str | Path, id_key: str, check: Callable[[Any], None] | None = None) -> list[dict]:
    """Whole records of every shard in ``output_dir`` (shard-name order), the first of each id kept.

    Other tasks may be writing these files: their unfinished last lines are left out, never cut.

    :raises ValueError: a damaged line before the last, or one ``check`` rejects, naming the file and line.
    """
    validate = id_checker(id_key, check)
    seen, records = set(), []
    for path in shard_files(output_dir):
        for row in read_complete_jsonl(path, validate)[0]:
            if row[id_key] not in seen:
                seen.add(row[id_key])
                records.append(row)
    return records


def check_settings(output_dir: str | Path, settings: dict[str, Any]) -> None:
    """The first run writes ``<output_dir>/settings.json``; a later run or task with other settings is refused,
    since its records would be mixed with records made differently.

    :raises RecipeError: naming the settings file and every setting that differs (old -> new).
    """
    path = Path(output_dir) / SETTINGS_FILE
    current = json.loads(json.dumps(settings))  # compared as stored: tuples are lists, keys strings
    if path.is_file():
        written = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(written) | set(current) if written.get(k) != current.get(k))
        if changed:
            listed = ", ".join(f"{k}: {written.get(k)!r} -> {current.get(k)!r}" for k in changed)
            raise RecipeError(f"{path}: {output_dir} holds records made with other settings ({listed}); "
                              "resume with the same settings or use a new output_dir")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
