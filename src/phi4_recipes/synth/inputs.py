"""Input rows with stable ids: each row's id column (or its index), duplicates and missing ids reported."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class InputRow:
    id: str
    row: dict
    problem: str | None = None  # why the row cannot be processed at all (it is still reported under its id)


def input_rows(rows: Iterable[dict], id_field: str | None, max_rows: int | None = None) -> list[InputRow]:
    """Every row with its id; a missing or repeated id gives a row-index id and a problem, never a silent skip."""
    seen: set[str] = set()
    out = []
    for index, row in enumerate(rows):
        if max_rows is not None and index >= max_rows:
            break
        raw = row.get(id_field) if id_field else index
        problem = None
        if id_field and (raw is None or raw == ""):
            raw, problem = f"row-{index}", f"missing_field:{id_field}"
        row_id = str(raw) if id_field else f"row-{index}"
        if row_id in seen:
            row_id, problem = f"{row_id}@row-{index}", "duplicate_id"
        seen.add(row_id)
        out.append(InputRow(row_id, dict(row), problem))
    return out
