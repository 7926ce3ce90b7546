"""Append-only result shards, one line per input row keyed by its id, and which rows are done.

``<output_dir>/shard-XXXXX-of-YYYYY.jsonl`` holds the ``SourceResult`` of every row that shard finished,
fsynced line by line. Reopening a shard drops a killed writer's torn last line; rows already in any
shard of the folder are skipped, so a rerun after kill -9 loses nothing and writes nothing twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from phi4_recipes.io import JsonlAppender, read_complete_jsonl, stable_hash
from phi4_recipes.recipe_checks import RecipeError

SETTINGS_FILE = "settings.json"


def shard_path(output_dir: str | Path, index: int, count: int) -> Path:
    return Path(output_dir) / f"shard-{index:05d}-of-{count:05d}.jsonl"


def shard_of(row_id: str, num_shards: int) -> int:
    return stable_hash(row_id) % num_shards


def _check_result(row: dict) -> None:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise ValueError("not a synth result line (no string 'id')")


def open_shard(path: Path) -> JsonlAppender:
    return JsonlAppender(path, validate=_check_result)


def read_results(output_dir: str | Path, skip: tuple[Path, ...] = ()) -> list[dict]:
    """Complete result lines of every shard in the folder (another shard may be mid-write: its torn line is left)."""
    results = []
    for path in sorted(Path(output_dir).glob("shard-*-of-*.jsonl")):
        if path not in skip:
            results.extend(read_complete_jsonl(path, _check_result)[0])
    return results


def check_settings(output_dir: str | Path, settings: dict) -> None:
    """The first run writes its result settings; a later run or shard with different ones is refused."""
    path = Path(output_dir) / SETTINGS_FILE
    current = json.loads(json.dumps(settings))
    if path.is_file():
        written = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(written) | set(current) if written.get(k) != current.get(k))
        if changed:
            raise RecipeError(f"{output_dir} holds results made with other settings ({', '.join(changed)}); "
                              "use a new output_dir or the same settings")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
