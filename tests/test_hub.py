import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, constants

from phi4_recipes.hub import (
    HubPushError,
    card_eval_results,
    model_lineage,
    push_checkpoint,
    refresh_model_card,
    render_model_card,
    write_model_card,
)
from phi4_recipes.manifest import read_manifest, write_manifest

MANIFEST = {
    "stage": "dpo_pts",
    "seed": 42,
    "recipe_path": "recipes/tiny/dpo_pts.yaml",
    "recipe": "stage: dpo_pts\nbeta: 0.1\n",
    "inputs": [{"source": "outputs/tiny/pts/pairs.jsonl", "rows": 12, "sha256": "ab" * 32}],
    "versions": {"trl": "1.16.0", "transformers": "5.24.0"},
}


def test_model_card_has_base_model_recipe_data_stage_versions_and_evals(tmp_path):
    scores = {"tiny_arithmetic": {"exact_match": 0.25, "exact_match_stderr": 0.05, "num_samples": 40, "limit": 40,
                                  "title": "Tiny arithmetic"}}
    card = write_model_card(tmp_path, MANIFEST, base_model="me/phi4-tiny-sft", hub_model_id="me/phi4-tiny-dpo",
                            mixture="source weight\nsynthetic 0.40", eval_results=scores).read_text()
    assert card.startswith("---\n") and "base_model: me/phi4-tiny-sft" in card
    assert "DPO round 1 on Pivotal Token Search pairs" in card
    assert "stage: dpo_pts\nbeta: 0.1" in card and "synthetic 0.40" in card
    assert "`outputs/tiny/pts/pairs.jsonl`: 12 rows" in card
    # stderr is a column beside its score, not a metric of its own; the limit is said in words.
    assert "| tiny_arithmetic | exact_match | 0.2500 | 0.0500 | 40 |" in card and "exact_match_stderr" not in card
    assert "`limit` (40 samples per task)" in card
    assert "- trl: 1.16.0" in card
    assert "https://github.com/)" not in card and "](https://github.com/" not in card
    # The Hub reads results from the card's model-index metadata, and so does a later refresh.
    assert card_eval_results(tmp_path / "README.md") == scores


@pytest.fixture(autouse=True)
def _empty_hub_cache(tmp_path_factory, monkeypatch):
    """A Hugging Face cache of the test's own, so the machine's cache cannot change what a card says."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hub_cache")))


def cache_snapshot(repo_id: str, card: str) -> Path:
    """`repo_id`'s README.md in the Hugging Face cache layout (refs/main -> snapshots/<sha>/), as a download leaves it."""
    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    sha = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text(card)
    return snapshot


def test_card_parses_with_huggingface_hub_and_lists_eval_results(tmp_path):
    """What the Hub itself reads: ModelCard metadata with license, datasets, base model and model-index."""
    manifest = {**MANIFEST, "inputs": [*MANIFEST["inputs"], {"source": "HuggingFaceTB/smoltalk", "rows": 100}]}
    scores = {"gpqa": {"accuracy": 0.5, "accuracy_stderr": 0.02, "num_samples": 448, "title": "GPQA"},
              "math": {"exact_match": 0.75}}
    write_model_card(tmp_path, manifest, base_model="microsoft/phi-4", hub_model_id="me/phi4-dpo",
                     eval_results=scores)
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    # microsoft/phi-4's card is not in the (empty) test cache, so nothing says its license.
    assert data.base_model == "microsoft/phi-4" and data.license == "unknown"
    assert data.datasets == ["HuggingFaceTB/smoltalk"]  # local files are listed in the text, not as Hub ids
    results = {(r.dataset_type, r.metric_type): r for r in data.eval_results}
    assert set(results) == {("gpqa", "accuracy"), ("math", "exact_match")}
    assert results["gpqa", "accuracy"].metric_value == 0.5 and results["gpqa", "accuracy"].dataset_name == "GPQA"
    assert results["gpqa", "accuracy"].task_type == "text-generation" and data.model_name == "me/phi4-dpo"


def test_local_base_model_is_not_put_in_hub_metadata(tmp_path):
    for local in ("/tmp/sft", "outputs/tiny/midtrain", "tiny", str(tmp_path)):
        card = render_model_card(MANIFEST, base_model=local, hub_model_id=None)
        assert "base_model" not in ModelCard(card).data.to_dict(), local
        assert f"`{local}`" in card  # the lineage is in the text instead
    (tmp_path / "manifest.json").write_text(json.dumps({"stage": "midtrain"}))
    card = render_model_card(MANIFEST, base_model=str(tmp_path), hub_model_id=None)
    assert "midtraining (long context) stage (not on the Hub)" in card


def _stage(folder: Path, base_model: str, **manifest) -> Path:
    """A checkpoint folder as `training.finish` leaves it: manifest with the lineage of its base, then the card."""
    write_manifest(folder, stage=manifest.pop("stage", "sft"), recipe_path=None,
                   configs={"model_args": {"model_name_or_path": base_model}}, seed=0, inputs=[],
                   extra={"lineage": model_lineage(base_model)})
    write_model_card(folder, read_manifest(folder), base_model=base_model, hub_model_id=None)
    return folder


def test_chain_of_local_checkpoints_carries_the_root_hub_id_license_and_parents(tmp_path):
    # The root stands for a model downloaded from the Hub: its card says it was fine-tuned from org/name.
    root = tmp_path / "downloaded"
    root.mkdir()
    (root / "README.md").write_text("---\nbase_model: org/name\nlicense: llama3.2\n---\n# a Llama fine-tune\n")
    sft = _stage(tmp_path / "sft", str(root))
    dpo = _stage(tmp_path / "dpo", str(sft), stage="dpo_pts")  # local -> local: SFT -> DPO
    card = ModelCard.load(dpo / "README.md")
    assert card.data.base_model == "org/name" and card.data.license == "llama3.2"
    assert f"the local checkpoint `{sft}`" in card.text and "[org/name](https://huggingface.co/org/name) through 2" \
        in card.text
    assert read_manifest(dpo)["lineage"] == {"base_model": "org/name", "local_parents": [str(sft), str(root)],
                                             "license": {"license": "llama3.2"}}
    # A card rewritten later (`python -m phi4_recipes.hub`, run_eval) keeps the lineage the manifest recorded,
    # even with the parents gone.
    shutil.rmtree(root)
    shutil.rmtree(sft)
    assert ModelCard.load(refresh_model_card(dpo)).data.base_model == "org/name"


def test_older_manifest_without_lineage_is_followed_through_its_base(tmp_path):
    root = cache_snapshot("org/llama-ft", "---\nlicense: other\nlicense_name: llama3\nlicense_link: LICENSE\n---\n")
    older = tmp_path / "sft"
    older.mkdir()
    (older / "manifest.json").write_text(json.dumps({"stage": "sft", "resolved_config": {
        "model_args": {"model_name_or_path": str(root)}}}))
    lineage = model_lineage(str(older))
    # A Hugging Face cache snapshot is the Hub model its folder names.
    assert lineage == {"base_model": "org/llama-ft", "local_parents": [str(older), str(root)],
                       "license": {"license": "other", "license_name": "llama3", "license_link": "LICENSE"}}
    data = ModelCard(render_model_card({"stage": "dpo_pts"}, base_model=str(older), hub_model_id=None)).data
    assert (data.base_model, data.license, data.license_name) == ("org/llama-ft", "other", "llama3")


def test_license_is_the_base_models_or_unknown(tmp_path):
    def card_license(base_model):
        return ModelCard(render_model_card({"stage": "sft"}, base_model=base_model, hub_model_id=None)).data.license

    assert card_license(None) == card_license("tiny") == "apache-2.0"  # trained from scratch with this project
    assert card_license("Qwen/Qwen2.5-0.5B") == "unknown"  # not in the cache, and the tests run offline
    cache_snapshot("Qwen/Qwen2.5-0.5B", "---\nlicense: apache-2.0\n---\n")
    cache_snapshot("meta-llama/Llama-3.2-1B", "---\nlicense: llama3.2\n---\n")
    assert card_license("meta-llama/Llama-3.2-1B") == "llama3.2" and card_license("Qwen/Qwen2.5-0.5B") == "apache-2.0"
    by_config = tmp_path / "by_config"
    by_config.mkdir()
    (by_config / "config.json").write_text(json.dumps({"model_type": "llama", "license": "gemma"}))
    assert card_license(str(by_config)) == "gemma"
    (tmp_path / "silent").mkdir()
    assert card_license(str(tmp_path / "silent")) == "unknown"


def test_push_uploads_folder_without_intermediate_checkpoints(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))

    def upload_folder(self, **kw):
        calls.append(("upload", kw["repo_id"], kw))
        return "https://huggingface.co/me/x/commit/1"

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = push_checkpoint(tmp_path, "me/x", token="hf_test", private=True)
    assert url.endswith("/commit/1")
    assert calls[0] == ("create", "me/x", {"private": True, "exist_ok": True})
    upload = calls[1][2]
    assert upload["folder_path"] == str(tmp_path) and "checkpoint-*" in upload["ignore_patterns"]


def test_push_failure_says_checkpoint_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def refuse(self, *a, **kw):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(HubPushError, match=f"network unreachable; the local checkpoint is kept at {tmp_path}"):
        push_checkpoint(tmp_path, "me/x", token="hf_test")


def test_offline_mode_refuses_with_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubPushError, match="HF_HUB_OFFLINE is set; the local checkpoint is kept"):
        push_checkpoint(tmp_path, "me/x", token="hf_test")


def test_refresh_card_takes_new_scores_and_keeps_the_ones_it_has(tmp_path):
    manifest = {**MANIFEST, "resolved_config": {"model_args": {"model_name_or_path": "me/base"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "## Evaluation" not in refresh_model_card(tmp_path).read_text()
    card = refresh_model_card(tmp_path, eval_results={"tiny_choice": {"acc": 0.5}}).read_text()
    assert "| tiny_choice | acc | 0.5000 | – | – |" in card and "base_model: me/base" in card
    # `python -m phi4_recipes.hub FOLDER` rewrites the card from the manifest and keeps its scores.
    subprocess.run([sys.executable, "-m", "phi4_recipes.hub", str(tmp_path)], check=True, capture_output=True,
                   timeout=120)
    assert (tmp_path / "README.md").read_text() == card


def test_training_and_hub_modules_load_no_evaluation_code():
    # Layering: a DPO run (training, hub, model loading) must not import phi4_recipes.evaluation.
    code = ("import sys, phi4_recipes.run_dpo, phi4_recipes.hub, phi4_recipes.training; "
            "print([m for m in sys.modules if m.startswith('phi4_recipes.evaluation')])")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "[]"
