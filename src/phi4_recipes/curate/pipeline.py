"""Assemble the three curation stages from a `CurateConfig` and run them with datatrove executors.

The same pipelines run on a laptop (`LocalPipelineExecutor`, `tasks` shards on `workers` processes) and on a
cluster (`SlurmPipelineExecutor`, one array job per stage, chained with `depends`).

Output layout under `output_dir`:
    data/<language_route>/<rank>.parquet     curated documents (fixed schema, see steps.OUTPUT_COLUMNS)
    long_context/<8k+|16k+>/<rank>.parquet    the long documents again, for midtraining mixtures
    logs/<stage>/stats.json                   datatrove's per-step stats (dropped_<reason> counters)
    curate_stats.json                         those stats merged into one file
    quality_model.pkl, quality_metrics.json   the classifier used and its held-out precision/recall
    work/                                     intermediate shards, dedup signatures and removal lists
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from datatrove.pipeline.readers import JsonlReader, WarcReader
from datatrove.pipeline.writers import JsonlWriter

from phi4_recipes.curate import steps
from phi4_recipes.curate.quality import BUILTIN_LABELS, load_labeled_jsonl, train_quality_classifier
from phi4_recipes.producers import build_executor

if TYPE_CHECKING:  # the options live with the script's, a layer above curate/
    from phi4_recipes.curate.options import CurateConfig

STAGES = ("filter", "dedup_cluster", "dedup_filter")


def prepare_quality_model(config: CurateConfig) -> str:
    """Path of the classifier to use; trains (and reports held-out metrics for) one when none is given."""
    if config.quality_model:
        if not Path(config.quality_model).exists():
            raise FileNotFoundError(f"quality_model not found: {config.quality_model}")
        return config.quality_model
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples = load_labeled_jsonl(config.quality_labels or BUILTIN_LABELS)
    classifier, metrics = train_quality_classifier(examples, seed=config.seed)
    model_path = out / "quality_model.pkl"
    classifier.save(model_path)
    (out / "quality_metrics.json").write_text(json.dumps(dataclasses.asdict(metrics), indent=1) + "\n")
    return str(model_path)


def _reader(config: CurateConfig):
    if config.input_format == "html_files":
        return steps.HtmlFileReader(config.input_dir, max_bytes=config.max_html_bytes,
                                    glob_pattern=config.glob_pattern or "**/*.htm*", limit=config.limit)
    if config.input_format == "jsonl":
        return JsonlReader(config.input_dir, text_key=config.html_key, glob_pattern=config.glob_pattern,
                           limit=config.limit)
    return WarcReader(config.input_dir, glob_pattern=config.glob_pattern, limit=config.limit)


def _dropped_writer(config: CurateConfig, step: str):
    if not config.keep_dropped:
        return None
    return JsonlWriter(str(Path(config.output_dir) / "dropped" / step), output_filename="${rank}.jsonl.gz")


def build_stage_pipelines(config: CurateConfig, quality_model_path: str) -> dict[str, list]:
    """The pipeline (list of datatrove steps) of each stage, keyed by stage name."""
    out = Path(config.output_dir)
    work = out / "work"
    minhash = config.minhash_params()
    filter_stage = [
        _reader(config),
        steps.HtmlInputFilter(max_chars=config.max_html_bytes),
        steps.HtmlExtractStep(timeout_s=config.extract_timeout_s),
        steps.LanguageIdFilter(config.languages, config.min_language_score, config.language_routes,
                               config.language_model_path, exclusion_writer=_dropped_writer(config, "language")),
        steps.CorruptionFilter(config.corruption_thresholds(), exclusion_writer=_dropped_writer(config, "corruption")),
        steps.QualityFilter(quality_model_path, config.quality_threshold,
                            exclusion_writer=_dropped_writer(config, "quality")),
    ]
    if config.eval_sets:
        filter_stage.append(steps.DecontaminationFilter(config.eval_sets, config.decontamination_ngram,
                                                        exclusion_writer=_dropped_writer(config, "decontamination")))
    filter_stage += [
        steps.LongContextTagger(config.long_context_tokens, config.extra_long_context_tokens),
        steps.DedupSignatureWriter(str(work / "signatures"), minhash),
        JsonlWriter(str(work / "filtered"), output_filename="${rank}.jsonl.gz"),
    ]
    return {
        "filter": filter_stage,
        "dedup_cluster": [steps.DedupClusterStep(str(work / "signatures"), str(work / "removed"))],
        "dedup_filter": [
            steps.IntermediateJsonlReader(str(work / "filtered")),
            steps.DedupFilter(str(work / "removed"), exclusion_writer=_dropped_writer(config, "dedup")),
            steps.CuratedParquetWriter(str(out / "data")),
            steps.LongContextParquetWriter(str(out / "long_context")),
        ],
    }


def build_executors(config: CurateConfig, quality_model_path: str) -> list:
    """One executor per stage, each depending on the previous one."""
    pipelines = build_stage_pipelines(config, quality_model_path)
    logs = Path(config.output_dir) / "logs"
    executors = []
    for stage in STAGES:
        tasks = 1 if stage == "dedup_cluster" else config.tasks
        executors.append(build_executor(pipelines[stage], config, tasks=tasks, logging_dir=logs / stage,
                                        job_name=f"curate_{stage}", depends=executors[-1] if executors else None))
    return executors


def merge_stats(output_dir: str | Path) -> dict:
    """Merge each stage's datatrove `stats.json` into `{stage: {step: {counter: total}}}`."""
    merged: dict[str, dict[str, dict[str, float]]] = {}
    for stage in STAGES:
        path = Path(output_dir) / "logs" / stage / "stats.json"
        if not path.exists():
            continue
        stage_stats: dict[str, dict[str, float]] = {}
        for step in json.loads(path.read_text()):
            counters = {}
            for key, value in step.get("stats", {}).items():
                counters[key] = value.get("total", value) if isinstance(value, dict) else value
            stage_stats[step["name"]] = counters
        merged[stage] = stage_stats
    (Path(output_dir) / "curate_stats.json").write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n")
    return merged


def run_curation(config: CurateConfig) -> dict:
    """Train/load the classifier, run the three stages (the last executor pulls in the others), merge stats."""
    model_path = prepare_quality_model(config)
    executors = build_executors(config, model_path)
    executors[-1].run()
    if config.executor == "local":
        # A run that dropped every document writes no shard; the (empty) output folders still exist.
        for folder in ("data", "long_context"):
            (Path(config.output_dir) / folder).mkdir(parents=True, exist_ok=True)
        return merge_stats(config.output_dir)
    return {}
