"""Model cards and pushing checkpoints to the Hugging Face Hub.

Pushing happens after the checkpoint is saved locally, so a failed push (offline, no token, no rights)
never costs the run: the error says where the checkpoint is.

Evaluation scores reach the card from run_eval, which passes them in (this module never imports the
evaluation code, so a training run does not load it). The card keeps them in its `model-index` metadata,
the Hub's own place for results, so rewriting the card from the manifest keeps them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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


EvalResults = Mapping[str, Mapping[str, float]]  # {benchmark: {metric: value, "<metric>_stderr": value}}


def model_index(name: str, eval_results: EvalResults) -> list[dict]:
    """Scores as the Hub's `model-index` card metadata (one result per benchmark)."""
    results = [{"task": {"type": "text-generation"}, "dataset": {"name": benchmark, "type": benchmark},
                "metrics": [{"type": metric, "value": value} for metric, value in scores.items()]}
               for benchmark, scores in eval_results.items()]
    return [{"name": name, "results": results}]


def card_eval_results(card_path: str | Path) -> dict[str, dict[str, float]]:
    """The scores an existing card holds in its `model-index` metadata ({} without a card or scores)."""
    path = Path(card_path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        return {}
    metadata = yaml.safe_load(text[4:text.index("\n---\n", 4)]) or {}
    return {result["dataset"]["name"]: {m["type"]: m["value"] for m in result.get("metrics", [])}
            for entry in metadata.get("model-index") or [] for result in entry.get("results", [])}


def render_model_card(manifest: dict, *, base_model: str | None, hub_model_id: str | None,
                      mixture: str | None = None, eval_results: EvalResults | None = None) -> str:
    stage = manifest.get("stage", "unknown")
    versions = manifest.get("versions", {})
    evals = eval_results or {}
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["phi4-recipes", "phi3", stage, "trl"],
        "base_model": base_model if base_model and not base_model.startswith(("/", ".")) else None,
        "model-index": model_index(hub_model_id or f"phi4-recipes-{stage}", evals) if evals else None,
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
    from .manifest import read_manifest

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
