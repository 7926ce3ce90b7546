"""`CurateConfig`: every knob of a curation recipe, read from YAML plus `--key value` overrides.

Unknown keys fail with the key and the file named, so a typo in a recipe never silently runs defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phi4_recipes.curate.corruption import CorruptionThresholds


@dataclass
class CurateConfig:
    """Options of `run_curate.py` (paths are relative to the working directory)."""

    input_dir: str
    output_dir: str
    input_format: str = "html_files"  # html_files | jsonl (HTML in `html_key`) | warc
    html_key: str = "html"
    glob_pattern: str | None = None
    limit: int = -1  # documents per task; -1 reads everything

    executor: str = "local"  # local | slurm
    tasks: int = 1
    workers: int = 1
    # "fork" reuses the parent's imports (sklearn, fasttext, datatrove), saving seconds per worker on Linux;
    # use "forkserver" or "spawn" where forking is unsafe (macOS, threads started before the run).
    local_start_method: str = "fork"
    slurm_partition: str | None = None
    slurm_time: str = "04:00:00"
    slurm_cpus_per_task: int = 1
    slurm_mem_per_cpu_gb: int = 2
    slurm_qos: str = "normal"
    slurm_venv_path: str | None = None
    slurm_logs_dir: str | None = None

    max_html_bytes: int = 5_000_000
    extract_timeout_s: float | None = 5.0

    languages: list[str] | None = None
    min_language_score: float = 0.5
    language_routes: dict[str, str] | None = None
    language_model_path: str | None = None

    corruption: dict[str, Any] = field(default_factory=dict)  # overrides of CorruptionThresholds fields

    quality_model: str | None = None  # a saved classifier; None trains one from `quality_labels`
    quality_labels: str | None = None  # labelled JSONL; None uses the built-in set
    quality_threshold: float = 0.5

    eval_sets: list[str] = field(default_factory=list)  # JSONL files of evaluation items
    decontamination_ngram: int = 13

    minhash_bands: int = 14
    minhash_rows: int = 8
    minhash_shingle_words: int = 5

    long_context_tokens: int = 8_192
    extra_long_context_tokens: int = 16_384

    keep_dropped: bool = False  # also write dropped documents (with their reason) under <output>/dropped/
    seed: int = 0

    def __post_init__(self) -> None:
        if self.input_format not in ("html_files", "jsonl", "warc"):
            raise ValueError(f"input_format must be html_files, jsonl or warc, got {self.input_format!r}")
        if self.executor not in ("local", "slurm"):
            raise ValueError(f"executor must be local or slurm, got {self.executor!r}")
        if self.executor == "slurm" and not self.slurm_partition:
            raise ValueError("executor: slurm needs slurm_partition")
        if self.tasks < 1 or self.workers < 1:
            raise ValueError(f"tasks and workers must be >= 1, got tasks={self.tasks} workers={self.workers}")
        self.corruption_thresholds()  # validate keys early

    def corruption_thresholds(self) -> CorruptionThresholds:
        known = {f.name for f in dataclasses.fields(CorruptionThresholds)}
        unknown = sorted(set(self.corruption) - known)
        if unknown:
            raise ValueError(f"unknown corruption threshold(s) {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.corruption.items()}
        return CorruptionThresholds(**values)


def _fields() -> set[str]:
    return {f.name for f in dataclasses.fields(CurateConfig)}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CurateConfig:
    """Read a recipe YAML, apply overrides, and build the config.

    Raises:
        ValueError: naming the file and key for unknown keys, a non-mapping file or missing required keys.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe must be a mapping of keys to values")
    for key in raw:
        if key not in _fields():
            raise ValueError(f"{path}: unknown key {key!r} (known keys: {', '.join(sorted(_fields()))})")
    for key in overrides or {}:
        if key not in _fields():
            raise ValueError(f"command line: unknown key {key!r} (recipe {path})")
    values = {**raw, **(overrides or {})}
    missing = [name for name in ("input_dir", "output_dir") if name not in values]
    if missing:
        raise ValueError(f"{path}: missing required key(s) {missing}")
    try:
        return CurateConfig(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err
