import json

import pytest
from huggingface_hub import HfApi

from phi4_recipes.evaluation.results import SCHEMA
from phi4_recipes.hub import HubPushError, push_checkpoint, render_model_card, write_model_card

MANIFEST = {
    "stage": "dpo_pts",
    "seed": 42,
    "recipe_path": "recipes/tiny/dpo_pts.yaml",
    "recipe": "stage: dpo_pts\nbeta: 0.1\n",
    "inputs": [{"source": "outputs/tiny/pts/pairs.jsonl", "rows": 12, "sha256": "ab" * 32}],
    "versions": {"trl": "1.16.0", "transformers": "5.24.0"},
}


def test_model_card_has_base_model_recipe_data_stage_versions_and_evals(tmp_path):
    (tmp_path / "eval").mkdir()
    record = {"schema": SCHEMA, "benchmarks": {"tiny_arithmetic": {"metric": "exact_match", "score": 0.25,
                                                                   "stderr": 0.05}}}
    (tmp_path / "eval" / "tiny.json").write_text(json.dumps(record))
    card = write_model_card(tmp_path, MANIFEST, base_model="me/phi4-tiny-sft", hub_model_id="me/phi4-tiny-dpo",
                            mixture="source weight\nsynthetic 0.40").read_text()
    assert card.startswith("---\n") and "base_model: me/phi4-tiny-sft" in card
    assert "DPO round 1 on Pivotal Token Search pairs" in card
    assert "stage: dpo_pts\nbeta: 0.1" in card and "synthetic 0.40" in card
    assert "`outputs/tiny/pts/pairs.jsonl`: 12 rows" in card
    assert "| tiny_arithmetic | exact_match | 0.2500 |" in card
    assert "| tiny_arithmetic | exact_match_stderr | 0.0500 |" in card
    assert "- trl: 1.16.0" in card


def test_local_base_model_is_not_put_in_hub_metadata():
    card = render_model_card(MANIFEST, base_model="/tmp/sft", hub_model_id=None)
    assert "base_model:" not in card.split("---")[1]


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


def test_refresh_card_picks_up_new_eval_results(tmp_path):
    from phi4_recipes.hub import refresh_model_card

    manifest = {**MANIFEST, "resolved_config": {"model_args": {"model_name_or_path": "me/base"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "## Evaluation" not in refresh_model_card(tmp_path).read_text()
    (tmp_path / "eval").mkdir()
    record = {"schema": SCHEMA, "benchmarks": {"tiny_choice": {"metric": "acc", "score": 0.5, "stderr": None}}}
    (tmp_path / "eval" / "tiny.json").write_text(json.dumps(record))
    card = refresh_model_card(tmp_path).read_text()
    assert "| tiny_choice | acc | 0.5000 |" in card and "base_model: me/base" in card
