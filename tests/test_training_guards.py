"""What a training stage checks before it trains: inputs exist, nothing finished is overwritten, resume
picks a whole checkpoint."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from phi4_recipes.io import RecipeError, looks_local
from phi4_recipes.training import newest_complete_checkpoint, require_inputs, resolve_resume

REPO = Path(__file__).resolve().parents[1]


def _checkpoint(folder: Path, torn: bool = False) -> Path:
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(4, 4)}, str(folder / "model.safetensors"))
    (folder / "trainer_state.json").write_text("{}")
    if torn:  # killed mid-save: the weights file stops part-way
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    return folder


def _args(output_dir, resume=None):
    return SimpleNamespace(output_dir=str(output_dir), resume_from_checkpoint=resume)


def test_missing_upstream_stage_names_path_key_and_the_recipe_that_writes_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no outputs/ here: the SFT recipe's base model is missing
    script = SimpleNamespace(recipe_path=str(REPO / "recipes/tiny/sft.yaml"), tokenizer_name_or_path="tiny",
                             dataset_name=None, dataset_mixture=None)
    model = SimpleNamespace(model_name_or_path="outputs/tiny/midtrain")
    with pytest.raises(RecipeError, match=r"sft\.yaml: key 'model_name_or_path': outputs/tiny/midtrain does not "
                                          r"exist; it is written by recipes/tiny/midtrain\.yaml: run that stage first"):
        require_inputs(script, model)


def test_hub_ids_and_presets_are_not_taken_for_missing_paths():
    assert not looks_local("microsoft/phi-4") and not looks_local("tiny")
    assert looks_local("outputs/tiny/midtrain") and looks_local("./ckpt") and looks_local("data.jsonl")
    require_inputs(SimpleNamespace(recipe_path=None, tokenizer_name_or_path="phi4", dataset_name="org/data",
                                   dataset_mixture=None), SimpleNamespace(model_name_or_path="microsoft/phi-4"))


def test_finished_output_dir_is_refused_unless_resuming_or_overwriting(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights of an earlier run")
    with pytest.raises(FileExistsError, match=rf"{tmp_path}.*model\.safetensors.*--overwrite_output_dir true"):
        resolve_resume(_args(tmp_path))
    assert resolve_resume(_args(tmp_path), overwrite_output_dir=True) is None
    assert resolve_resume(_args(tmp_path / "fresh")) is None


def test_resume_skips_a_torn_checkpoint_and_says_which(tmp_path, caplog):
    _checkpoint(tmp_path / "checkpoint-2")
    _checkpoint(tmp_path / "checkpoint-3", torn=True)
    with caplog.at_level(logging.WARNING, logger="phi4_recipes"):
        assert resolve_resume(_args(tmp_path, "true")) == str(tmp_path / "checkpoint-2")
    assert "checkpoint-3" in caplog.text and "not completely written" in caplog.text
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_resume(_args(tmp_path, str(tmp_path / "checkpoint-3")))
    assert newest_complete_checkpoint(tmp_path / "none") is None
