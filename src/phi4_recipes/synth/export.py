"""Merge every shard of a run into one HF-dataset-ready file, with duplicates removed and every loss counted.

Writes, in the run's folder:
- ``data.jsonl``: the kept rows, ordered by id, with the chosen column (``text`` or ``messages``), the
  workflow's extra columns and ``provenance``. Load it with ``load_dataset("json", data_files=...)``.
- ``dropped.jsonl``: one line per dropped output or source row (id, reason, detail), duplicates included.
- ``bad_rows.jsonl``: one line per input row that could not be processed (id, reason, detail).
- ``report.json``: counts, dropped and bad rows by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from phi4_recipes.data.near_dedup import MinHashParams, find_duplicates, signature_record
from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.producers import read_records


def dedup_text(row: dict) -> str:
    """What two rows must share to be duplicates: their text, or every turn of their conversation."""
    if row.get("text"):
        return row["text"]
    return "\n".join(turn["content"] for turn in row.get("messages") or [])


def export_run(output_dir: str | Path, output_format: str, *, dedup: bool = True,
               minhash: MinHashParams = MinHashParams()) -> dict:
    output_dir = Path(output_dir)
    results = sorted(read_records(output_dir, "id"), key=lambda r: r["id"])
    kept = [row for result in results for row in result["rows"]]
    dropped = [{"id": result["id"], **d} for result in results for d in result["drops"]]
    bad = [{"id": result["id"], **result["bad"]} for result in results if result["bad"]]

    if dedup and kept:
        signatures = [signature_record(row["id"], 0, i, dedup_text(row), minhash) for i, row in enumerate(kept)]
        removed = {d.id: d for d in find_duplicates(signatures)}
        dropped += [{"id": d.id, "reason": d.reason, "duplicate_of": d.duplicate_of} for d in removed.values()]
        kept = [row for row in kept if row["id"] not in removed]

    other = "messages" if output_format == "text" else "text"
    rows = [{k: v for k, v in row.items() if k != other} for row in kept if row.get(output_format)]
    dropped += [{"id": row["id"], "reason": f"no_{output_format}"} for row in kept if not row.get(output_format)]
    write_jsonl(output_dir / "data.jsonl", rows)
    write_jsonl(output_dir / "dropped.jsonl", dropped)
    write_jsonl(output_dir / "bad_rows.jsonl", bad)
    report = {
        "source_rows": len(results),
        "sources_with_output": sum(bool(r["rows"]) for r in results),
        "kept_rows": len(rows),
        "dropped_by_reason": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        "bad_rows_by_reason": dict(sorted(Counter(b["reason"] for b in bad).items())),
    }
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
