"""Model cards and pushing checkpoints to the Hugging Face Hub.

Pushing happens after the checkpoint is saved locally, so a failed push (offline, no token, no rights)
never costs the run: the error says where the checkpoint is.

A card's `base_model` and `license` come from the model's lineage (`model_lineage`): the nearest Hub model up
the chain of local checkpoints, which the training stage records in its manifest with the local parents.

Evaluation scores reach the card from run_eval, which passes them in (this module never imports the
evaluation code, so a training run does not load it). The card keeps them in its `model-index` metadata,
the Hub's own place for results, so rewriting the card from the manifest keeps them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import (
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    get_token,
    hf_hub_download,
    metadata_load,
    try_to_load_from_cache,
)

from .manifest import read_manifest
from .model_loading import is_preset

STAGE_TITLES = {
    "pretrain": "pretraining",
    "midtrain": "midtraining (long context)",
    "sft": "supervised fine-tuning",
    "dpo_pts": "DPO round 1 on Pivotal Token Search pairs",
    "dpo_judge": "DPO round 2 on judge-guided pairs",
}


class HubPushError(RuntimeError):
    pass


# {benchmark: {metric: value, "<metric>_stderr": value, "num_samples": n, "limit": n | None, "title": str}};
# only `metric` keys are scores: the stderr and sample keys describe them.
EvalResults = Mapping[str, Mapping[str, Any]]
_DETAIL_KEYS = ("num_samples", "limit", "title")
# Card metadata key for what the Hub's model-index has no field for (stderr, samples scored, limit).
DETAILS_KEY = "phi4_recipes_eval"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str | None) -> bool:
    """A Hub repo id (`owner/name`) rather than a local folder, a file or a preset name."""
    if not name or Path(name).exists() or name.startswith(("/", ".", "~", "outputs/", "data/", "recipes/")):
        return False
    return bool(_HUB_ID.fullmatch(name)) and Path(name).suffix.lower() not in (".jsonl", ".json", ".parquet")


def project_license() -> str:
    """The package's license as a Hub license id (`Apache-2.0` -> `apache-2.0`)."""
    try:
        meta = importlib.metadata.metadata("phi4-recipes")
        return (meta.get("License-Expression") or meta.get("License") or "apache-2.0").lower()
    except importlib.metadata.PackageNotFoundError:
        return "apache-2.0"


# `license` and, for license "other", the name and link the Hub shows with it.
_LICENSE_KEYS = ("license", "license_name", "license_link")
_CACHE_FOLDER = re.compile(r"models--(?P<owner>[^/]+?)--(?P<name>[^/]+)")


def _card_metadata(folder: Path) -> dict[str, Any]:
    """A folder's card front matter (README.md), {} without a card."""
    card = folder / "README.md"
    return (metadata_load(card) or {}) if card.is_file() else {}


def _license_of(metadata: dict[str, Any]) -> dict[str, str]:
    return {k: str(metadata[k]) for k in _LICENSE_KEYS if metadata.get(k)} if metadata.get("license") else {}


def _folder_license(folder: Path) -> dict[str, str]:
    """A foreign checkpoint's license: its card's front matter, else a `license` its config.json names."""
    config = folder / "config.json"
    config_license = json.loads(config.read_text(encoding="utf-8")).get("license") if config.is_file() else None
    return _license_of(_card_metadata(folder)) or _license_of({"license": config_license})


def _hub_license(hub_id: str) -> dict[str, str]:
    """A Hub model's license from its card: the cached copy (from_pretrained does not fetch cards), else the card
    downloaded into the cache; {} offline, for a gated repo or without a card."""
    card = try_to_load_from_cache(hub_id, "README.md")
    if not isinstance(card, str):
        try:
            card = hf_hub_download(hub_id, "README.md", etag_timeout=10)
        except Exception:  # offline, no network, no access or no card: nothing says the license
            return {}
    return _license_of(metadata_load(Path(card)) or {})


def _hub_id_of_cache_folder(folder: Path) -> str | None:
    """`.../models--owner--name/snapshots/<sha>` (a Hugging Face cache snapshot) -> "owner/name"."""
    match = _CACHE_FOLDER.fullmatch(folder.parent.parent.name)
    return f"{match['owner']}/{match['name']}" if match and folder.parent.name == "snapshots" else None


def model_lineage(base_model: str | None) -> dict[str, Any]:
    """Where a model trained from `base_model` comes from, for its manifest and card:
    {"base_model": the Hub id of the nearest Hub model up the chain or None, "local_parents": absolute paths of
    the local checkpoints between, nearest first, "license": {"license": ..., ...}}.

    A local checkpoint of ours is followed through its manifest (the lineage it recorded, or for an older one
    its `model_name_or_path`); a foreign folder through its card's `base_model` or its Hugging Face cache path.
    The license is the nearest one a card or config states (a Hub base's card is read from the cache or, online,
    downloaded); from scratch (no base, a preset) it is the project's, and "unknown" where nothing states one.
    """
    if not base_model or is_preset(base_model):
        return {"base_model": None, "local_parents": [], "license": {"license": project_license()}}
    parents: list[str] = []
    current, hub_id, license_ = base_model, None, {}
    while current and not hub_id:
        if is_preset(current):  # an older manifest's stage trained from scratch, under the project's license
            license_ = license_ or {"license": project_license()}
            break
        if is_hub_id(current):
            hub_id, license_ = current, license_ or _hub_license(current)
            break
        folder = Path(current).resolve()
        if not folder.is_dir() or str(folder) in parents:
            break  # a folder an older manifest names that is gone or moved: the chain ends here
        parents.append(str(folder))
        manifest = read_manifest(folder)
        if manifest is None:  # not written by a stage of ours: its own card says what it is
            license_ = license_ or _folder_license(folder)
            hub_id = _hub_id_of_cache_folder(folder)
            card_base = _card_metadata(folder).get("base_model")
            current = card_base if isinstance(card_base, str) else None
        elif manifest.get("lineage") is not None:
            recorded = manifest["lineage"]
            hub_id = recorded.get("base_model")
            parents += [p for p in recorded.get("local_parents", []) if p not in parents]
            license_ = license_ or dict(recorded.get("license") or {})
            break
        else:  # an older manifest, without the lineage: follow the model it was trained from
            current = ((manifest.get("resolved_config") or {}).get("model_args") or {}).get("model_name_or_path")
    return {"base_model": hub_id, "local_parents": parents, "license": license_ or {"license": "unknown"}}


def project_link() -> str:
    """The project's home from the package metadata, or its name when the metadata has no URL."""
    try:
        meta = importlib.metadata.metadata("phi4-recipes")
        urls = [u.split(",", 1)[-1].strip() for u in meta.get_all("Project-URL") or []] + [meta.get("Home-page")]
        url = next((u for u in urls if u and u.startswith("https://") and u.rstrip("/") != "https://github.com"), None)
    except importlib.metadata.PackageNotFoundError:
        url = None
    return f"[phi4-recipes]({url})" if url else "the `phi4-recipes` package"


def _split_scores(scores: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """A benchmark's entry -> ({metric: value}, {metric: stderr}, {num_samples, limit, title})."""
    details = {k: scores[k] for k in _DETAIL_KEYS if scores.get(k) is not None}
    stderrs = {k[: -len("_stderr")]: v for k, v in scores.items() if k.endswith("_stderr") and v is not None}
    metrics = {k: v for k, v in scores.items() if k not in _DETAIL_KEYS and not k.endswith("_stderr")}
    return metrics, stderrs, details


def eval_results_metadata(eval_results: EvalResults) -> list[EvalResult]:
    """Scores as huggingface_hub `EvalResult`s, which `ModelCardData` writes as the card's `model-index`."""
    results = []
    for benchmark, scores in eval_results.items():
        metrics, _, details = _split_scores(scores)
        for metric, value in metrics.items():
            results.append(EvalResult(task_type="text-generation", dataset_type=benchmark,
                                      dataset_name=details.get("title", benchmark), metric_type=metric,
                                      metric_value=value, metric_name=metric))
    return results


def card_eval_results(card_path: str | Path) -> dict[str, dict[str, Any]]:
    """The scores an existing card holds (model-index plus our details), {} without a card or scores."""
    path = Path(card_path)
    if not path.is_file():
        return {}
    data = ModelCard.load(path, ignore_metadata_errors=True).data
    details = data.to_dict().get(DETAILS_KEY) or {}
    scores: dict[str, dict[str, Any]] = {}
    for result in data.eval_results or []:
        entry = scores.setdefault(result.dataset_type, {})
        entry[result.metric_type] = result.metric_value
    for benchmark, extra in details.items():
        entry = scores.setdefault(benchmark, {})
        entry.update({f"{m}_stderr": v for m, v in (extra.get("stderr") or {}).items()})
        entry.update({k: extra[k] for k in _DETAIL_KEYS if extra.get(k) is not None})
    return scores


def _lineage(base_model: str | None, lineage: dict[str, Any]) -> list[str]:
    if not base_model:
        return ["- Base model: none (trained from scratch)"]
    if is_hub_id(base_model):
        return [f"- Base model: [{base_model}](https://huggingface.co/{base_model})"]
    manifest = read_manifest(base_model) if Path(base_model).is_dir() else None
    if manifest:
        lines = [f"- Base model: the local checkpoint `{base_model}`, from this pipeline's "
                 f"{STAGE_TITLES.get(manifest.get('stage'), manifest.get('stage'))} stage (not on the Hub)"]
    else:
        lines = [f"- Base model: `{base_model}` (a preset or local folder, not on the Hub)"]
    root, parents = lineage.get("base_model"), lineage.get("local_parents") or []
    if root:
        lines.append(f"- Descends from [{root}](https://huggingface.co/{root}) through {len(parents)} local "
                     f"checkpoint{'s' if len(parents) != 1 else ''}")
    return lines


def _evaluation_section(evals: EvalResults) -> list[str]:
    lines = ["## Evaluation", "", "| benchmark | metric | value | ± stderr | samples scored |", "|---|---|---:|---:|---:|"]
    limits = set()
    for benchmark, scores in evals.items():
        metrics, stderrs, details = _split_scores(scores)
        if details.get("limit") is not None:
            limits.add(details["limit"])
        for metric, value in metrics.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            stderr = f"{stderrs[metric]:.4f}" if metric in stderrs else "–"
            lines.append(f"| {benchmark} | {metric} | {shown} | {stderr} | {details.get('num_samples', '–')} |")
    lines.append("")
    if limits:
        lines += [f"Scored with lm-eval's `limit` ({', '.join(map(str, sorted(limits)))} samples per task): a quick "
                  "check on part of each benchmark, not comparable with full-benchmark numbers.", ""]
    return lines


def render_model_card(manifest: dict, *, base_model: str | None, hub_model_id: str | None,
                      mixture: str | None = None, eval_results: EvalResults | None = None) -> str:
    stage = manifest.get("stage", "unknown")
    lineage = manifest.get("lineage") or model_lineage(base_model)
    license_ = lineage.get("license") or {"license": "unknown"}
    versions = manifest.get("versions", {})
    evals = eval_results or {}
    inputs = manifest.get("inputs") or []
    hub_datasets = list(dict.fromkeys(i["source"] for i in inputs if is_hub_id(i.get("source"))))
    details = {}
    for benchmark, scores in evals.items():
        _, stderrs, extra = _split_scores(scores)
        if stderrs or extra:
            details[benchmark] = {**({"stderr": stderrs} if stderrs else {}), **extra}
    # A LoRA run saves an adapter, unless phi4_recipes.merge_adapter has merged it into whole weights since.
    adapter = bool(((manifest.get("resolved_config") or {}).get("model_args") or {}).get("use_peft")
                   and not manifest.get("merged_adapter"))
    data = ModelCardData(
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        **license_,
        tags=["phi4-recipes", "phi3", stage, "trl"],
        base_model=base_model if is_hub_id(base_model) else lineage.get("base_model"),
        datasets=hub_datasets or None,
        model_name=hub_model_id or f"phi4-recipes-{stage}",
        eval_results=eval_results_metadata(evals) or None,
        **({DETAILS_KEY: details} if details else {}),
    )
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {hub_model_id or 'phi4-recipes checkpoint'}", "",
        f"Stage: **{STAGE_TITLES.get(stage, stage)}** of the Phi-4 recipe (arXiv 2412.08905), trained with "
        f"{project_link()} on TRL.", "",
        *_lineage(base_model, lineage),
        f"- License: {license_['license']}" + (" (no card or config up the lineage states one)"
                                              if license_["license"] == "unknown" else ""),
        f"- Seed: {manifest.get('seed')}",
        f"- Recipe: `{manifest.get('recipe_path')}`",
        "",
        ("A PEFT (LoRA) adapter on the base model above: loads with peft's "
         "`AutoPeftModelForCausalLM.from_pretrained`, no remote code." if adapter else
         "Loads with plain transformers (`AutoModelForCausalLM.from_pretrained`), no remote code."), "",
    ]
    if inputs or mixture:
        lines += ["## Data", ""]
        if mixture:
            lines += ["```text", mixture, "```", ""]
        lines += [f"- `{i.get('source')}`: {i.get('rows')} rows" + (f", sha256 `{i['sha256'][:16]}`"
                  if i.get("sha256") else "") for i in inputs]
        lines.append("")
    if evals:
        lines += _evaluation_section(evals)
    if manifest.get("recipe"):
        lines += ["## Recipe", "", "```yaml", manifest["recipe"].rstrip(), "```", ""]
    lines += ["## Versions", ""] + [f"- {k}: {v}" for k, v in versions.items()] + [""]
    return "\n".join(lines)


def write_model_card(output_dir: str | Path, manifest: dict, *, base_model: str | None,
                     hub_model_id: str | None, mixture: str | None = None,
                     eval_results: EvalResults | None = None) -> Path:
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(manifest, base_model=base_model, hub_model_id=hub_model_id,
                                      mixture=mixture, eval_results=eval_results), encoding="utf-8")
    return path


def push_checkpoint(output_dir: str | Path, hub_model_id: str, *, token: str | None = None,
                    private: bool | None = None, revision: str | None = None) -> str:
    """Upload the saved checkpoint folder (without intermediate checkpoints) and return the commit URL."""
    output_dir = Path(output_dir)
    kept = f"the local checkpoint is kept at {output_dir}"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HubPushError(f"cannot push to {hub_model_id}: HF_HUB_OFFLINE is set; {kept}")
    token = token or get_token()
    if not token:
        raise HubPushError(f"cannot push to {hub_model_id}: no Hugging Face token (set HF_TOKEN or run "
                           f"`hf auth login`); {kept}")
    api = HfApi(token=token)
    try:
        api.create_repo(hub_model_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=hub_model_id,
            folder_path=str(output_dir),
            revision=revision,
            commit_message="Upload phi4-recipes checkpoint",
            ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "*.pt", "*.pth"],
        )
    except Exception as err:  # network, auth or permission: all leave the local files untouched
        raise HubPushError(f"pushing {output_dir} to {hub_model_id} failed: {err}; {kept}") from err
    return str(getattr(commit, "commit_url", commit))


def refresh_model_card(output_dir: str | Path, eval_results: EvalResults | None = None) -> Path:
    """Rewrite a checkpoint's card from its manifest, with `eval_results` (run_eval passes every score of
    the checkpoint) or, when None, with the scores the card already lists."""
    manifest = read_manifest(output_dir)
    if manifest is None:
        raise FileNotFoundError(f"{output_dir}: no manifest.json (not written by a phi4-recipes stage)")
    resolved = manifest.get("resolved_config", {})
    base_model = (resolved.get("model_args") or {}).get("model_name_or_path")
    hub_model_id = (resolved.get("training_args") or {}).get("hub_model_id")
    if eval_results is None:
        eval_results = card_eval_results(Path(output_dir) / "README.md")
    return write_model_card(output_dir, manifest, base_model=base_model, hub_model_id=hub_model_id,
                            eval_results=eval_results)


if __name__ == "__main__":
    import sys

    for folder in sys.argv[1:]:
        print(refresh_model_card(folder))
