"""Model cards and pushing checkpoints to the Hugging Face Hub.

Pushing happens after the checkpoint is saved locally, so a failed push (offline, no token, no rights)
never costs the run: the error says where the checkpoint is.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from huggingface_hub import HfApi, get_token

STAGE_TITLES = {
    "pretrain": "pretraining",
    "midtrain": "midtraining (long context)",
    "sft": "supervised fine-tuning",
    "dpo_pts": "DPO round 1 on Pivotal Token Search pairs",
    "dpo_judge": "DPO round 2 on judge-guided pairs",
}


class HubPushError(RuntimeError):
    pass


def collect_eval_results(output_dir: str | Path) -> dict[str, dict]:
    """Scores of every run_eval.py result in `<output_dir>/eval/`: {benchmark: {metric: score, ...}}."""
    from .evaluation.results import read_results

    results = {}
    for path in sorted(Path(output_dir).glob("eval/*.json")):
        for benchmark, entry in read_results(path)["benchmarks"].items():
            scores = {entry["metric"]: entry["score"]}
            if entry.get("stderr") is not None:
                scores[f"{entry['metric']}_stderr"] = entry["stderr"]
            results[benchmark] = scores
    return results


def render_model_card(manifest: dict, *, base_model: str | None, hub_model_id: str | None,
                      mixture: str | None = None) -> str:
    stage = manifest.get("stage", "unknown")
    versions = manifest.get("versions", {})
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["phi4-recipes", "phi3", stage, "trl"],
        "base_model": base_model if base_model and not base_model.startswith(("/", ".")) else None,
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    lines = [
        "---", yaml.safe_dump(metadata, sort_keys=False).strip(), "---", "",
        f"# {hub_model_id or 'phi4-recipes checkpoint'}", "",
        f"Stage: **{STAGE_TITLES.get(stage, stage)}** of the Phi-4 recipe (arXiv 2412.08905), trained with "
        "[phi4-recipes](https://github.com/) on TRL.", "",
        f"- Base model: `{base_model}`",
        f"- Seed: {manifest.get('seed')}",
        f"- Recipe: `{manifest.get('recipe_path')}`",
        "",
        "Loads with plain transformers (`AutoModelForCausalLM.from_pretrained`), no remote code.", "",
    ]
    inputs = manifest.get("inputs") or []
    if inputs or mixture:
        lines += ["## Data", ""]
        if mixture:
            lines += ["```text", mixture, "```", ""]
        lines += [f"- `{i.get('source')}`: {i.get('rows')} rows" + (f", sha256 `{i['sha256'][:16]}`"
                  if i.get("sha256") else "") for i in inputs]
        lines.append("")
    evals = manifest.get("eval_results") or {}
    if evals:
        lines += ["## Evaluation", "", "| benchmark | metric | value |", "|---|---|---|"]
        for benchmark, scores in evals.items():
            for metric, value in scores.items():
                shown = f"{value:.4f}" if isinstance(value, float) else str(value)
                lines.append(f"| {benchmark} | {metric} | {shown} |")
        lines.append("")
    if manifest.get("recipe"):
        lines += ["## Recipe", "", "```yaml", manifest["recipe"].rstrip(), "```", ""]
    lines += ["## Versions", ""] + [f"- {k}: {v}" for k, v in versions.items()] + [""]
    return "\n".join(lines)


def write_model_card(output_dir: str | Path, manifest: dict, *, base_model: str | None,
                     hub_model_id: str | None, mixture: str | None = None) -> Path:
    manifest = {**manifest, "eval_results": collect_eval_results(output_dir)}
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(manifest, base_model=base_model, hub_model_id=hub_model_id,
                                      mixture=mixture), encoding="utf-8")
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


def refresh_model_card(output_dir: str | Path) -> Path:
    """Rewrite a checkpoint's card from its manifest, e.g. after run_eval.py added results under eval/."""
    from .manifest import read_manifest

    manifest = read_manifest(output_dir)
    if manifest is None:
        raise FileNotFoundError(f"{output_dir}: no manifest.json (not written by a phi4-recipes stage)")
    resolved = manifest.get("resolved_config", {})
    base_model = (resolved.get("model_args") or {}).get("model_name_or_path")
    hub_model_id = (resolved.get("training_args") or {}).get("hub_model_id")
    return write_model_card(output_dir, manifest, base_model=base_model, hub_model_id=hub_model_id)


if __name__ == "__main__":
    import sys

    for folder in sys.argv[1:]:
        print(refresh_model_card(folder))
