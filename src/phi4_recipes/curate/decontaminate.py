"""Evaluation items for curation's decontamination step, read from JSONL dumps of the benchmark test sets.

The n-gram index itself is `phi4_recipes.data.ngrams` (evaluation's contamination report uses it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from phi4_recipes.jsonl import read_jsonl


def load_eval_texts(path: str | Path, fields: Sequence[str] = ("question", "prompt", "problem", "text")
                    ) -> tuple[list[str], list[str]]:
    """Read evaluation items from a JSONL file: the first present of `fields` is the text.

    Returns:
        tuple[list[str], list[str]]: texts and ids ("<file stem>/<id or line number>").
    Raises:
        ValueError: naming file and line when a row is not JSON or has none of `fields`.
    """
    path = Path(path)
    texts, ids = [], []
    for line_number, row in read_jsonl(path):
        text = next((row[key] for key in fields if isinstance(row, dict) and isinstance(row.get(key), str)), None)
        if text is None:
            raise ValueError(f"{path}:{line_number}: no text field; expected one of {list(fields)}")
        texts.append(text)
        ids.append(f"{path.stem}/{row.get('id', line_number)}")
    return texts, ids
