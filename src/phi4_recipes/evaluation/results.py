"""Write an evaluation run as one JSON (scores and provenance) plus one JSONL of per-sample outputs per benchmark.

The JSON is what eval/leaderboard.py reads, and its scores go into the checkpoint's model card; the sample
files are for reading what the model actually said. Beside it, `<run_name>_lm_eval/results.json` is lm-eval's
own results JSON for the run (`results`, `versions` = task versions, `n-shot`, `configs`, `config`), so lm-eval's
tools (`lm_eval.utils.make_table`, result viewers) read it unchanged. Our summary keeps package versions
under `versions`; lm-eval's file holds task versions there.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phi4_recipes.evaluation.lm_eval_runner import BenchmarkRun
from phi4_recipes.hashing import sha256_files
from phi4_recipes.manifest import git_commit, package_versions

if TYPE_CHECKING:  # the options live with the script's, a layer above evaluation/
    from phi4_recipes.evaluation.options import EvalArguments

SCHEMA = "phi4-recipes/eval-result/v1"
# Hash checkpoint weights only up to this size; a 14B checkpoint (~29 GB) would take minutes.
_MAX_HASHED_BYTES = 2 << 30


def default_output_dir(args: EvalArguments) -> Path:
    """`<model folder>/eval` for a local checkpoint ("beside the checkpoint"), else outputs/eval/<hub id>."""
    if args.output_dir:
        return Path(args.output_dir)
    if Path(args.model_name_or_path).is_dir():
        return Path(args.model_name_or_path) / "eval"
    return Path("outputs") / "eval" / args.model_name_or_path.replace("/", "__")


def run_name(args: EvalArguments) -> str:
    """The result file's stem: `run_name`, else the recipe file's stem, else "eval"."""
    if args.run_name:
        return args.run_name
    return Path(args.recipe_path).stem if args.recipe_path else "eval"


def model_fingerprint(model: str, lm_eval_config: dict[str, Any]) -> dict[str, Any]:
    """Which model was scored: folder hashes for a local checkpoint, the Hub revision for a Hub id."""
    info: dict[str, Any] = {"name_or_path": model, "num_parameters": lm_eval_config.get("model_num_parameters"),
                            "dtype": str(lm_eval_config.get("model_dtype"))}
    folder = Path(model)
    if not folder.is_dir():
        info.update(hub_revision=lm_eval_config.get("model_revision"), hub_sha=lm_eval_config.get("model_sha"))
        return info
    config = folder / "config.json"
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    total = sum(p.stat().st_size for p in weights)
    info.update(
        path=str(folder.resolve()),
        config_sha256=sha256_files([config]) if config.is_file() else None,
        weights_bytes=total,
        weights_sha256=sha256_files(weights) if weights and total <= _MAX_HASHED_BYTES else None,
    )
    manifest = folder / "manifest.json"
    if manifest.is_file():  # written by the training stage that produced the checkpoint
        info["stage"] = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
    return info


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def write_samples(run: BenchmarkRun, directory: Path) -> Path:
    """Every document, prompt, raw and filtered response and per-sample metric of one benchmark, as JSONL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run.benchmark.name}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for task, samples in sorted(run.output.get("samples", {}).items()):
            for sample in samples:
                row = {"task": task, **{k: v for k, v in sample.items() if not k.endswith("_hash")}}
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return path


# lm-eval's per-task sections of a results JSON, merged over our benchmarks (each is one lm-eval run).
_LM_EVAL_SECTIONS = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
                     "n-samples")
_LM_EVAL_RUN_KEYS = ("config", "git_hash", "date", "pretty_env_info", "transformers_version", "lm_eval_version",
                     "upper_git_hash", "model_source", "model_name", "model_name_sanitized", "system_instruction",
                     "chat_template", "chat_template_sha", "fewshot_as_multiturn", "start_time", "end_time",
                     "total_evaluation_time_seconds")


def lm_eval_results(runs: list[BenchmarkRun]) -> dict[str, Any]:
    """lm-eval's results JSON for the whole run, as `lm_eval --output_path` writes it (samples are in our JSONL)."""
    merged: dict[str, Any] = {section: {} for section in _LM_EVAL_SECTIONS}
    for run in runs:
        for section in _LM_EVAL_SECTIONS:
            merged[section].update(run.output.get(section) or {})
    first = runs[0].output if runs else {}
    merged.update({key: first[key] for key in _LM_EVAL_RUN_KEYS if key in first})
    merged.setdefault("config", {})
    return _jsonable(merged)


def build_record(args: EvalArguments, runs: list[BenchmarkRun], samples_dir: Path) -> dict[str, Any]:
    """The run's JSON: scores with stderr and settings per benchmark, model fingerprint, versions, commit."""
    first_config = runs[0].output.get("config", {}) if runs else {}
    benchmarks = {}
    for run in runs:
        b = run.benchmark
        benchmarks[b.name] = {
            "title": b.title,
            "task": b.task,
            "metric": b.metric,
            "score": run.score,
            "stderr": run.stderr,
            "num_fewshot": run.num_fewshot,
            "num_samples": run.num_samples,
            "gen_kwargs": run.gen_kwargs,
            "task_versions": run.output.get("versions", {}),
            "all_metrics": _jsonable(run.output.get("results", {})),
            "samples_file": str(samples_dir / f"{b.name}.jsonl"),
        }
    versions = package_versions()
    versions["lm_eval"] = runs[0].output.get("lm_eval_version", versions.get("lm_eval")) if runs else None
    return {
        "schema": SCHEMA,
        "run_name": run_name(args),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model_fingerprint(args.model_name_or_path, first_config),
        "settings": {
            "backend": args.backend,
            "apply_chat_template": args.apply_chat_template,
            "system_prompt": args.system_prompt,
            "seed": args.seed,
            "limit": args.limit,
            "bootstrap_iters": args.bootstrap_iters,
            "recipe_path": args.recipe_path,
            "recipe": dataclasses.asdict(args),
        },
        "benchmarks": benchmarks,
        "versions": versions,
        "git_commit": git_commit(),
    }


def write_results(args: EvalArguments, runs: list[BenchmarkRun]) -> Path:
    """Write `<output_dir>/<run_name>.json` and `<output_dir>/<run_name>_samples/<benchmark>.jsonl`."""
    output_dir = default_output_dir(args)
    samples_dir = output_dir / f"{run_name(args)}_samples"
    for run in runs:
        write_samples(run, samples_dir)
    lm_eval_path = output_dir / f"{run_name(args)}_lm_eval" / "results.json"
    lm_eval_path.parent.mkdir(parents=True, exist_ok=True)
    lm_eval_path.write_text(json.dumps(lm_eval_results(runs), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    record = build_record(args, runs, samples_dir)
    record["lm_eval_results_file"] = str(lm_eval_path)
    path = output_dir / f"{run_name(args)}.json"
    if path.is_file():
        record = carry_forward(read_results(path), record, output_dir / "history")
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def carry_forward(earlier: dict[str, Any], record: dict[str, Any], history_dir: Path) -> dict[str, Any]:
    """A rerun under the same run name keeps every earlier score: the earlier file is archived whole under
    ``history/``, and benchmarks this run did not score are carried into the new file, each marked with the
    run it came from. A benchmark scored again takes the new score (the latest wins)."""
    history_dir.mkdir(parents=True, exist_ok=True)
    stamp = str(earlier.get("created", "unknown")).replace(":", "")
    archived = history_dir / f"{earlier.get('run_name', 'run')}-{stamp}.json"
    archived.write_text(json.dumps(earlier, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, entry in earlier["benchmarks"].items():
        if name not in record["benchmarks"]:
            record["benchmarks"][name] = {**entry, "from_run": entry.get("from_run") or earlier.get("created")}
    record["history"] = [*earlier.get("history", []), str(archived)]
    return record


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a result JSON written by `write_results`, checking its schema."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read evaluation result: {err}") from err
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an evaluation result (expected key 'schema' = {SCHEMA!r})")
    if not isinstance(record.get("benchmarks"), dict):
        raise ValueError(f"{path}: key 'benchmarks' is missing or not a mapping")
    return record


def card_scores(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The scores of one result (as `read_results` returns it) for the model card (hub.EvalResults):
    {benchmark: {metric: score, "<metric>_stderr": stderr, "num_samples": n, "limit": limit, "title": title}}."""
    limit = (record.get("settings") or {}).get("limit")
    scores: dict[str, dict[str, Any]] = {}
    for benchmark, entry in record["benchmarks"].items():
        scores[benchmark] = {entry["metric"]: entry["score"], "num_samples": entry.get("num_samples"),
                             "limit": limit, "title": entry.get("title")}
        if entry.get("stderr") is not None:
            scores[benchmark][f"{entry['metric']}_stderr"] = entry["stderr"]
    return scores
