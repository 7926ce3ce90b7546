"""The files of curation's two-pass deduplication: signature records in, per-task removal lists out.

Each task writes one signature record per document (`data.near_dedup.signature_record`), then one small task
reads every record here, groups documents that share an exact hash or an LSH band
(`data.near_dedup.find_duplicates`, which keeps the first of a group in (task, position) order), and writes
per-task lists of the ids to drop, which each task's filter reads back.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

# The hashing and grouping core is shared with synth/ (data/ is below both stages): data.near_dedup.
from ..data.near_dedup import DuplicateDecision
from ..jsonl import read_jsonl


def read_signature_folder(folder: str | Path) -> list[dict]:
    """Every signature record under `folder` (`*.jsonl`, one file per task)."""
    records = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        records.extend(row for _, row in read_jsonl(path))
    return records


def write_removal_lists(decisions: list[DuplicateDecision], folder: str | Path) -> dict[str, int]:
    """Write `removed_{rank:05d}.jsonl` per task (id, reason, duplicate_of); return counts per reason."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_rank: dict[int, list[DuplicateDecision]] = defaultdict(list)
    for decision in decisions:
        by_rank[decision.rank].append(decision)
    for rank, items in by_rank.items():
        with open(folder / f"removed_{rank:05d}.jsonl", "w", encoding="utf-8") as handle:
            for d in items:
                handle.write(json.dumps({"id": d.id, "reason": d.reason, "duplicate_of": d.duplicate_of}) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for decision in decisions:
        counts[decision.reason] += 1
    return dict(counts)


def read_removal_list(folder: str | Path, rank: int) -> dict[str, str]:
    """Ids to drop for task `rank`, mapped to the reason."""
    path = Path(folder) / f"removed_{rank:05d}.jsonl"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return {row["id"]: row["reason"] for row in map(json.loads, handle) if row}
