"""Load one dataset source: a local file (jsonl/json/parquet/csv), a local folder, or a Hub dataset id."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from phi4_recipes.hashing import sha256_files
from phi4_recipes.jsonl import read_jsonl

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


def _folder_builder(folder: Path) -> tuple[str, list[str]]:
    for suffix, builder in _FILE_BUILDERS.items():
        files = sorted(str(p) for p in folder.glob(f"*{suffix}"))
        if files:
            return builder, files
    raise FileNotFoundError(f"{folder}: no dataset files (*.jsonl, *.parquet, ...) and no save_to_disk dataset")


def load_source(path_or_id: str, split: str = "train", config: str | None = None) -> Dataset:
    """A `datasets.Dataset` from a local path or, when no such path exists, from the Hub."""
    path = Path(path_or_id)
    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise ValueError(f"{path}: unsupported file type {path.suffix!r} (use one of {sorted(_FILE_BUILDERS)})")
        if path.suffix == ".jsonl":
            check_jsonl_rows(path)
        return load_dataset(builder, data_files=str(path), split="train")
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            loaded = load_from_disk(str(path))
            return loaded[split] if isinstance(loaded, DatasetDict) else loaded
        builder, files = _folder_builder(path)
        return load_dataset(builder, data_files=files, split="train")
    if path_or_id.startswith((".", "/")) or path.suffix in _FILE_BUILDERS:
        raise FileNotFoundError(f"dataset not found: {path_or_id}")
    return load_dataset(path_or_id, config, split=split)


def check_jsonl_rows(path: Path) -> None:
    """Before datasets reads a JSON Lines file: every line parses (else `path:line`), and it has rows.

    datasets' own errors name neither file nor line, and an empty file surfaces as a bare StopIteration.
    """
    rows = 0
    for line_number, row in read_jsonl(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{line_number}: a row is a JSON object, got {type(row).__name__}")
        rows += 1
    if rows == 0:
        raise ValueError(f"{path}: no rows (the file is empty)")


def require_chat_messages(dataset: Dataset, name: str, column: str = "messages") -> None:
    """Every row's `messages` is a list of {role, content} with string values; a bad row is named by index."""
    for index, messages in enumerate(dataset[column]):
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"dataset {name}, row {index}: '{column}' must be a non-empty list of "
                             f"{{role, content}} messages, got {type(messages).__name__}")
        for turn, message in enumerate(messages):
            if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                    and isinstance(message.get("content"), str)):
                raise ValueError(f"dataset {name}, row {index}, message {turn}: expected {{role: str, content: str}}, "
                                 f"got {message!r:.120}")


def require_columns(dataset: Dataset, columns: list[str], name: str) -> None:
    """Fail naming the dataset and the missing column(s), before any training starts."""
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"dataset {name}: missing column(s) {missing}; it has {dataset.column_names}"
        )


def fingerprint(path_or_id: str, dataset: Dataset) -> dict:
    """What identifies an input in a manifest: sha256 of local files, plus datasets' own fingerprint."""
    entry = {"source": path_or_id, "rows": len(dataset), "datasets_fingerprint": dataset._fingerprint}
    path = Path(path_or_id)
    if path.is_file():
        entry["sha256"] = sha256_files([path])
    elif path.is_dir():
        entry["sha256"] = sha256_files(sorted(p for p in path.rglob("*") if p.is_file()), names_relative_to=path)
    return entry


def first_rows(dataset: Dataset, max_rows: int | None) -> Dataset:
    """The first `max_rows` rows (all of them when None): quick runs and tests."""
    return dataset if max_rows is None else dataset.select(range(min(max_rows, len(dataset))))


def load_train_split(script_args) -> Dataset:
    """A recipe's training data: `dataset_name` (+ `dataset_config`, `dataset_train_split`), `dataset_max_rows`."""
    if not script_args.dataset_name:
        raise ValueError("dataset_name is required: a local jsonl/parquet file or folder, or a Hub dataset id")
    dataset = load_source(script_args.dataset_name, script_args.dataset_train_split, script_args.dataset_config)
    return first_rows(dataset, script_args.dataset_max_rows)
