"""How much of each benchmark's test set appears in a training dataset (word n-gram overlap, 13 by default).

Benchmark items are read through lm-eval's own task loading (the same documents run_eval scores), and the
overlap itself is phi4_recipes.data.ngrams' index (the one curation's decontamination step uses).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

from phi4_recipes.data.ngrams import build_ngram_index, find_contamination
from phi4_recipes.evaluation.registry import Benchmark

# Examples of contaminated items kept in the report (the counts cover all of them).
MAX_LISTED = 20


def _strings(value: Any) -> Iterator[str]:
    """Every string in a row, however nested (text, messages, prompt/chosen/rejected, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def training_texts(path: str, split: str = "train") -> tuple[list[str], list[str]]:
    """One text per training row (all its strings joined), from a local JSON/JSONL/Parquet file or a Hub id."""
    local = Path(path)
    if local.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(local.suffix)
        if kind is None:
            raise ValueError(f"{path}: training data must be .jsonl, .json or .parquet")
        dataset = datasets.load_dataset(kind, data_files={split: str(local)}, split=split)
    else:
        dataset = datasets.load_dataset(path, split=split)
    texts = [" ".join(_strings(row)) for row in dataset]
    ids = [str(row.get("id", index)) for index, row in enumerate(dataset)]
    return texts, ids


def benchmark_items(benchmark: Benchmark, task_manager, limit: int | None = None) -> tuple[list[str], list[str]]:
    """The text of each test document of a benchmark (its prompt without few-shot or chat formatting)."""
    tasks = task_manager.load([benchmark.task])["tasks"]
    texts, ids = [], []
    for task_name, task in sorted(tasks.items()):
        for index, doc in enumerate(task.eval_docs):
            if limit is not None and index >= limit:
                break
            prompt = task.doc_to_text(doc)
            texts.append(prompt if isinstance(prompt, str) else " ".join(_strings(prompt)))
            ids.append(f"{task_name}/{index}")
    return texts, ids


def overlap_report(train_texts: list[str], train_ids: list[str], items: dict[str, tuple[list[str], list[str]]],
                   n: int = 13) -> dict[str, dict[str, Any]]:
    """Per benchmark: how many test items share an n-gram with some training row, and which rows."""
    report = {}
    for name, (texts, ids) in items.items():
        index = build_ngram_index(texts, n=n, ids=ids)
        hits = find_contamination(train_texts, index, ids=train_ids)
        contaminated = sorted({item for hit in hits for item in hit.matched}, key=ids.index)
        report[name] = {
            "n": n,
            "test_items": len(texts),
            "indexed_items": len(index),
            "contaminated_items": len(contaminated),
            "contaminated_share": len(contaminated) / len(texts) if texts else 0.0,
            "training_rows_with_overlap": len(hits),
            "examples": [
                {"item": item, "training_rows": [h.query_id for h in hits if item in h.matched][:5]}
                for item in contaminated[:MAX_LISTED]
            ],
        }
    return report
