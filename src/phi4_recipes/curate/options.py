"""Options of run_curate.py: reader, executor, extraction, filters, dedup and outputs of one curation run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from phi4_recipes.data.near_dedup import MinHashParams
from phi4_recipes.recipe_checks import RecipeError, RecipeSource, check_keys

from .corruption import CorruptionThresholds
from .long_docs import EXTRA_LONG_TOKENS, LONG_CONTEXT_TOKENS


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class CurateConfig(RecipeSource):
    """Options of `run_curate.py` (paths are relative to the working directory)."""

    input_dir: str = field(metadata=_help("Folder of HTML files, JSONL with HTML in `html_key`, or WARC files."))
    output_dir: str = field(metadata=_help("Where data/, long_context/, dropped/ and curate_stats.json go."))
    input_format: Literal["html_files", "jsonl", "warc"] = field(default="html_files", metadata=_help("Input kind."))
    html_key: str = field(default="html", metadata=_help("JSONL field holding the HTML."))
    glob_pattern: str | None = field(default=None, metadata=_help("Files to read under input_dir."))
    limit: int = field(default=-1, metadata=_help("Documents per task; -1 reads everything."))

    executor: Literal["local", "slurm"] = field(default="local", metadata=_help("datatrove executor."))
    tasks: int = field(default=1, metadata=_help("Input shards (datatrove tasks)."))
    workers: int = field(default=1, metadata=_help("Tasks run at once by the local executor."))
    # "fork" reuses the parent's imports (sklearn, fasttext, datatrove), saving seconds per worker on Linux;
    # use "forkserver" or "spawn" where forking is unsafe (macOS, threads started before the run).
    local_start_method: Literal["fork", "forkserver", "spawn"] = field(
        default="fork", metadata=_help("multiprocessing start method of the local executor."))
    slurm_partition: str | None = field(default=None, metadata=_help("Slurm partition (required for slurm)."))
    slurm_time: str = field(default="04:00:00", metadata=_help("Slurm time limit per job."))
    slurm_cpus_per_task: int = field(default=1, metadata=_help("Slurm CPUs per task."))
    slurm_mem_per_cpu_gb: int = field(default=2, metadata=_help("Slurm memory per CPU, GB."))
    slurm_qos: str = field(default="normal", metadata=_help("Slurm QOS."))
    slurm_venv_path: str | None = field(default=None, metadata=_help("Virtualenv the Slurm jobs activate."))
    slurm_logs_dir: str | None = field(default=None, metadata=_help("Slurm log folder (default: output_dir/logs)."))

    max_html_bytes: int = field(default=5_000_000, metadata=_help("Larger pages are dropped unread."))
    extract_timeout_s: float | None = field(default=5.0, metadata=_help("Per-page extraction time-out."))

    languages: list[str] | None = field(default=None, metadata=_help("Languages to keep; null keeps every one."))
    min_language_score: float = field(default=0.5, metadata=_help("fastText language confidence to keep a page."))
    language_routes: dict[str, str] | None = field(default=None, metadata=_help("Language -> output folder name."))
    language_model_path: str | None = field(default=None, metadata=_help("fastText model (default: bundled lid.176)."))

    corruption: dict[str, Any] = field(default_factory=dict, metadata=_help("Overrides of CorruptionThresholds fields."))

    quality_model: str | None = field(default=None, metadata=_help("A saved classifier; null trains one."))
    quality_labels: str | None = field(default=None, metadata=_help("Labelled JSONL; null uses the built-in set."))
    quality_threshold: float = field(default=0.5, metadata=_help("Quality score below which a page is dropped."))

    eval_sets: list[str] = field(default_factory=list, metadata=_help("JSONL files of evaluation items to decontaminate against."))
    decontamination_ngram: int = field(default=13, metadata=_help("n of the shared n-gram that marks contamination."))

    # Defaults come from the classes that use them, so a default lives in one place.
    minhash_bands: int = field(default=MinHashParams.bands, metadata=_help("MinHash LSH bands."))
    minhash_rows: int = field(default=MinHashParams.rows, metadata=_help("MinHash rows per band."))
    minhash_shingle_words: int = field(default=MinHashParams.shingle_words, metadata=_help("Words per shingle."))

    long_context_tokens: int = field(default=LONG_CONTEXT_TOKENS, metadata=_help("Tokens above which a page is long (8k+)."))
    extra_long_context_tokens: int = field(default=EXTRA_LONG_TOKENS, metadata=_help("Tokens from which a page is 16k+."))

    keep_dropped: bool = field(default=False, metadata=_help("Also write dropped documents with their reason under dropped/."))
    seed: int = field(default=0, metadata=_help("Seeds the quality classifier and MinHash permutations."))

    def __post_init__(self) -> None:
        if self.executor == "slurm" and not self.slurm_partition:
            raise RecipeError(f"{self.source}: executor: slurm needs key 'slurm_partition'")
        if self.tasks < 1 or self.workers < 1:
            raise RecipeError(f"{self.source}: tasks and workers must be >= 1, got tasks={self.tasks} workers={self.workers}")
        # A missing input folder is found now, not after the quality classifier has trained.
        if "://" not in self.input_dir and not Path(self.input_dir).exists():
            raise RecipeError(f"{self.source}: key 'input_dir': {self.input_dir} does not exist")
        self.corruption_thresholds()  # validate keys early

    def corruption_thresholds(self) -> CorruptionThresholds:
        check_keys(self.corruption, {f.name for f in dataclasses.fields(CorruptionThresholds)},
                   f"{self.source}: key 'corruption'",
                   what="threshold")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.corruption.items()}
        return CorruptionThresholds(**values)

    def minhash_params(self) -> MinHashParams:
        # Offset so the MinHash permutations do not share a stream with the quality classifier's seed.
        return MinHashParams(self.minhash_shingle_words, self.minhash_bands, self.minhash_rows, self.seed + 1)
