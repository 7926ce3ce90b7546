"""What a training stage checks before it trains: inputs exist, the output folder can be written, nothing
finished is overwritten, resume picks a whole checkpoint; and what its manifest records."""

import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from phi4_recipes.recipe_checks import RecipeError, looks_local
from phi4_recipes.training import newest_complete_checkpoint, require_inputs, resolve_resume
from stage_runner import run_stage, script_env

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


def test_a_truncated_checkpoint_names_its_weights_file_when_loaded_or_resumed(tmp_path, caplog):
    from trl import ModelConfig

    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
    from phi4_recipes.model_loading import get_model, tiny_tokenizer

    folder = tmp_path / "sft"
    Phi4ForCausalLM(Phi4Config.from_preset("tiny")).save_pretrained(folder)
    weights = folder.resolve() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy cut short
    named = rf"{re.escape(str(weights))} is truncated or corrupt"
    with pytest.raises(ValueError, match=named):  # what run_sft/run_dpo/run_pretrain load a folder with
        get_model(ModelConfig(model_name_or_path=str(folder)), tiny_tokenizer())

    torn = _checkpoint(tmp_path / "run" / "checkpoint-3", torn=True).resolve()
    named = rf"{re.escape(str(torn / 'model.safetensors'))} is truncated or corrupt"
    with pytest.raises(FileNotFoundError, match=rf"not a complete checkpoint folder: {named}"):
        resolve_resume(_args(tmp_path / "run", str(torn)))
    with caplog.at_level(logging.WARNING, logger="phi4_recipes"), pytest.raises(FileNotFoundError):
        resolve_resume(_args(tmp_path / "run", "true"))
    assert re.search(named, caplog.text), caplog.text


def test_a_negative_learning_rate_is_refused_when_the_recipe_is_read(tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text((REPO / "recipes/tiny/sft.yaml").read_text()
                      .replace("learning_rate: 1.0e-3", "learning_rate: -1.0e-3")
                      .replace("model_name_or_path: outputs/tiny/midtrain", "model_name_or_path: tiny")
                      .replace("output_dir: outputs/tiny/sft", f"output_dir: {tmp_path / 'out'}"))
    proc = run_stage("run_sft.py", recipe, check=False, timeout=300)
    assert proc.returncode != 0
    assert f"{recipe}: key 'learning_rate' must be a finite number >= 0, got -0.001" in proc.stderr, proc.stderr[-2000:]
    assert "Invalid learning rate" not in proc.stderr  # torch's refusal, once the model and data had loaded


def test_the_manifest_records_the_options_the_user_asked_for(tmp_path):
    """The script carries out push_to_hub and use_liger_kernel itself and hands the Trainer both switched off;
    the manifest still says the user turned them on. Offline the push is refused after the local save."""
    out = tmp_path / "sft"
    proc = run_stage("run_sft.py", "recipes/tiny/sft.yaml", "--model_name_or_path", "tiny", "--output_dir", out,
                     "--max_steps", "1", "--dataset_max_rows", "16", "--push_to_hub", "true", "--hub_model_id",
                     "someone/tiny-sft", "--use_liger_kernel", "true", check=False)
    assert proc.returncode != 0 and "HF_HUB_OFFLINE is set" in proc.stderr, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    asked = manifest["resolved_config"]["training_args"]
    assert asked["push_to_hub"] is True and asked["use_liger_kernel"] is True
    assert asked["hub_model_id"] == "someone/tiny-sft" and asked["max_steps"] == 1
    assert manifest["run_plan"]["trainer_args_changed"] == {"use_liger_kernel": False, "push_to_hub": False}
    assert "use_liger" not in manifest["resolved_config"]["script_args"]  # the deprecated key is gone
    assert (out / "model.safetensors").is_file()


# Output folders a stage cannot write: refused when the recipe is read, naming the key and the recipe (an
# output_dir that is a file: tests/test_bad_inputs.py).
PRODUCER = ("run_pts.py", "recipes/tiny/pts.yaml")
TRAINER = ("run_sft.py", "recipes/tiny/sft.yaml")


def _read_only_mount_runner() -> list[str] | None:
    """A command prefix that runs a command with its first argument bind-mounted read-only (a private mount
    namespace via unshare, so nothing outside the test sees it), or None where this machine cannot.

    Permission bits would not do: the tests run as root, which writes through them; only a read-only mount
    (or an immutable flag) stops root, so that is what a stage must detect.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    prefix = [unshare, "-rm", "sh", "-c", script, "sh"]
    with tempfile.TemporaryDirectory() as probe:
        check = subprocess.run([*prefix, probe, "sh", "-c", f"! touch {probe}/x"], capture_output=True, timeout=30)
        return prefix if check.returncode == 0 else None


@pytest.mark.parametrize("script, recipe", [TRAINER, PRODUCER], ids=["run_sft", "run_pts"])
def test_a_read_only_output_dir_fails_before_any_work(script, recipe, tmp_path):
    prefix = _read_only_mount_runner()
    if prefix is None:
        pytest.skip("needs `unshare -rm` and bind mounts to make a read-only folder (root writes through chmod)")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    # An existing folder, as in the report: training used to run to the end, then fail writing its results.
    cmd = [*prefix, str(read_only), sys.executable, str(REPO / "src/phi4_recipes" / script), recipe,
           "--model_name_or_path", "tiny", "--output_dir", str(read_only)]
    proc = subprocess.run(cmd, cwd=REPO, env=script_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f"{recipe} (with command-line overrides): key 'output_dir': {read_only} cannot be written: "
            f"{read_only} is on a read-only file system") in proc.stderr, proc.stderr[-2000:]
    assert "train_runtime" not in proc.stdout
