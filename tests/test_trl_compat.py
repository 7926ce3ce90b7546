"""The SFT and DPO recipes run under TRL's own CLI (`trl sft|dpo --config`) and under our scripts, and our
parser reads TRL's `datasets:` mixture. The runs use a tiny preset checkpoint in a scratch workspace where the
recipes' relative paths (outputs/tiny/..., chat_templates/) resolve, with `max_steps: 2`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phi4_recipes.configs import DPOConfig, ModelConfig, ScriptArguments, SFTConfig, parse_recipe
from stage_runner import script_env

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
TRL_RECIPES = {"sft": sorted(RECIPES.glob("**/sft.yaml")), "dpo": sorted(RECIPES.glob("**/dpo_pts.yaml"))}
TRL = Path(sys.executable).parent / "trl"


@pytest.mark.parametrize("command,recipe", [(c, r) for c, rs in TRL_RECIPES.items() for r in rs],
                         ids=lambda x: str(x.relative_to(RECIPES)) if isinstance(x, Path) else x)
def test_trls_cli_parser_takes_every_sft_and_dpo_recipe_whole(command, recipe):
    """`trl sft|dpo` hands any recipe key its dataclasses do not know to `accelerate launch`, which fails."""
    from importlib import import_module

    parser = import_module(f"trl.scripts.{command}").make_parser()
    *parsed, config_left, cli_left = parser.parse_args_and_config(
        ["--config", str(recipe), "--bf16", "false", "--fp16", "false"], return_remaining_strings=True,
        separate_remaining_strings=True)
    assert config_left == [] and cli_left == []
    training_args = parsed[1]
    # transformers' Liger key: TRL patches its own Phi-3 with it; our scripts hand it to our model instead.
    assert "use_liger" not in yaml.safe_load(recipe.read_text())
    assert training_args.use_liger_kernel == (recipe.parent == RECIPES or recipe.parent.name == "colab")


def test_our_parser_reads_trls_datasets_mixture(tmp_path):
    recipe = tmp_path / "trl.yaml"
    recipe.write_text("model_name_or_path: tiny\noutput_dir: out\nbf16: false\ndatasets:\n"
                      "  - {path: json, data_files: data/tiny/arithmetic_train.jsonl, split: train}\n"
                      "  - path: HuggingFaceTB/smoltalk\n    name: everyday-conversations\n    columns: [messages]\n"
                      "streaming: false\ntest_split_size: 0.1\n")
    script_args, _, _ = parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(recipe)])
    first, second = script_args.datasets
    assert (first.path, first.data_files, second.name, second.columns) == (
        "json", "data/tiny/arithmetic_train.jsonl", "everyday-conversations", ["messages"])
    assert script_args.test_split_size == 0.1 and script_args.stage is None
    # A dataset named on the command line replaces the recipe's mixture, as every override does.
    script_args, _, _ = parse_recipe(ScriptArguments, DPOConfig, ModelConfig,
                                     argv=[str(RECIPES / "tiny" / "dpo_pts.yaml"), "--dataset_name", "x.jsonl"])
    assert script_args.datasets == [] and script_args.dataset_name == "x.jsonl"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """outputs/tiny/{midtrain,sft} (a tiny preset checkpoint), the PTS pairs and the chat templates."""
    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
    from phi4_recipes.model_loading import configure_generation, tiny_tokenizer
    from phi4_recipes.tokenizer import make_tokenizer_config_portable

    root = tmp_path_factory.mktemp("workspace")
    model, tokenizer = Phi4ForCausalLM(Phi4Config.from_preset("tiny")), tiny_tokenizer()
    configure_generation(model, tokenizer)
    for stage in ("midtrain", "sft"):
        model.save_pretrained(root / "outputs" / "tiny" / stage)
        tokenizer.save_pretrained(root / "outputs" / "tiny" / stage)
        make_tokenizer_config_portable(root / "outputs" / "tiny" / stage)
    (root / "outputs" / "tiny" / "pts").mkdir()
    shutil.copy(REPO / "data" / "tiny" / "dpo_pairs.jsonl", root / "outputs" / "tiny" / "pts" / "pairs.jsonl")
    shutil.copytree(REPO / "chat_templates", root / "chat_templates")
    shutil.copytree(REPO / "data" / "tiny", root / "data" / "tiny")
    # TRL's dataset_name takes Hub ids and folders, not a file: a folder holding the SFT file.
    (root / "data" / "arithmetic").mkdir()
    shutil.copy(REPO / "data" / "tiny" / "arithmetic_train.jsonl", root / "data" / "arithmetic")
    return root


def _run(workspace: Path, cmd: list[str]) -> None:
    env = {**script_env(), "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def _trained(output_dir: Path, steps: int = 2) -> None:
    state = json.loads(next(output_dir.rglob("trainer_state.json")).read_text()) \
        if list(output_dir.rglob("trainer_state.json")) else None
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "config.json").is_file()
    if state is not None:
        assert state["global_step"] == steps


def _sft_data_override(recipe: Path) -> list[str]:
    """The tiny SFT recipe's data is made upstream (synth) and named as a JSONL file, which TRL's dataset_name
    cannot load (a folder or a `datasets:` entry can): the arithmetic set it is made from, as a folder."""
    name = yaml.safe_load(recipe.read_text()).get("dataset_name")
    return ["--dataset_name", "data/arithmetic"] if name else []


@pytest.mark.skipif(not TRL.exists(), reason="the `trl` console script is not installed next to this Python")
def test_trl_sft_runs_the_tiny_sft_recipe(workspace):
    recipe = RECIPES / "tiny" / "sft.yaml"
    _run(workspace, [str(TRL), "sft", "--config", str(recipe), *_sft_data_override(recipe),
                     "--output_dir", "trl_sft", "--max_steps", "2"])
    _trained(workspace / "trl_sft")


@pytest.mark.skipif(not TRL.exists(), reason="the `trl` console script is not installed next to this Python")
def test_trl_dpo_runs_the_tiny_dpo_recipe(workspace):
    _run(workspace, [str(TRL), "dpo", "--config", str(RECIPES / "tiny" / "dpo_pts.yaml"), "--output_dir", "trl_dpo",
                     "--max_steps", "2"])
    _trained(workspace / "trl_dpo")


def test_our_scripts_run_the_same_recipes_and_ship_the_plain_template(workspace):
    from huggingface_hub import ModelCard

    from phi4_recipes.tokenizer import load_chat_template

    # The SFT recipe's data is made upstream (synth); the arithmetic file it is made from stands in for it.
    for script, recipe, stage, data in (("run_sft.py", "sft.yaml", "sft", ["--dataset_name", "data/arithmetic"]),
                                        ("run_dpo.py", "dpo_pts.yaml", "dpo_pts", [])):
        out = workspace / f"ours_{stage}"
        _run(workspace, [sys.executable, str(REPO / "src" / "phi4_recipes" / script), str(RECIPES / "tiny" / recipe),
                         *data, "--output_dir", str(out), "--max_steps", "2"])
        _trained(out)
        assert json.loads((out / "manifest.json").read_text())["stage"] == stage
        # Trained with the {% generation %} template (SFT), saved with the plain one.
        assert (out / "chat_template.jinja").read_text() == load_chat_template()
        assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
        assert ModelCard.load(out / "README.md").data.license == "apache-2.0"
    assert os.path.isdir(workspace / "ours_sft")
