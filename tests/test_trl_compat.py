"""The SFT and DPO recipes run under TRL's own CLI (`trl sft|dpo --config`) and under our scripts, on the files
our own stages write, and our parser reads TRL's `datasets:` mixture.

The TRL commands are taken from the README as written. Their inputs come from our stages, run in a scratch
workspace where the recipes' relative paths (outputs/tiny/..., data/tiny/, chat_templates/) resolve:
outputs/tiny/midtrain is a small arithmetic model trained here (the one tests/test_pts_run.py uses, as the
tiny pretraining takes minutes), run_sft.py writes outputs/tiny/sft from it, and run_pts.py searches it for
the pivotal-token pairs in outputs/tiny/pts/pairs.jsonl (on one-step problems that small model sometimes
solves, with the widened query filter of tests/test_pts_run.py)."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phi4_recipes.configs import DPOConfig, ModelConfig, ScriptArguments, SFTConfig, parse_recipe
from stage_runner import script_env
from test_pts_run import NUM_QUESTIONS, SIMPLE_ARITHMETIC, _train_small_arithmetic_model, pts_argv

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
TRL_RECIPES = {"sft": sorted(RECIPES.glob("**/sft.yaml")), "dpo": sorted(RECIPES.glob("**/dpo_pts.yaml"))}
TRL = Path(sys.executable).parent / "trl"
README_TRL_COMMANDS = ("trl sft --config", "python -m phi4_recipes.portable", "trl dpo --config",
                       "python -m phi4_recipes.merge_adapter")


def readme_trl_commands() -> list[list[str]]:
    """The README's TRL commands and the post-save steps, in order, as argv lists."""
    lines = [line.split("#")[0].strip() for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith(README_TRL_COMMANDS)]
    assert tuple(" ".join(c[:3]) for c in commands) == README_TRL_COMMANDS, commands  # each once, in this order
    return commands


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


TRAINING_RECIPES = [r for r in sorted(RECIPES.glob("**/*.yaml"))
                    if "learning_rate" in (yaml.safe_load(r.read_text()) or {}) and r.parent.name != "accelerate_configs"]


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_training_recipes_parse_without_transformers_deprecation_warning(recipe):
    """TRL defaults `gradient_checkpointing` (transformers 5's deprecated name) to on, so a recipe that leaves
    checkpointing out printed a FutureWarning at every training stage; the recipes name `activation_checkpointing`."""
    import warnings

    config = DPOConfig if "beta" in yaml.safe_load(recipe.read_text()) else SFTConfig
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_recipe(ScriptArguments, config, ModelConfig, argv=[str(recipe), "--bf16", "false", "--fp16", "false",
                                                                 "--output_dir", str(recipe.parent / "_unused")])
    assert not [w for w in caught if "checkpointing" in str(w.message)], recipe


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
    """A scratch checkout: recipes, built-in data and templates, and outputs/tiny/{midtrain,sft,pts} from our
    stages."""
    from phi4_recipes.tokenizer import make_tokenizer_config_portable

    root = tmp_path_factory.mktemp("workspace")
    for folder in ("recipes", "chat_templates", "data/tiny"):
        shutil.copytree(REPO / folder, root / folder)
    midtrain = _train_small_arithmetic_model(root / "outputs" / "tiny" / "midtrain")
    make_tokenizer_config_portable(midtrain)
    questions = root / "questions.jsonl"
    questions.write_text("".join(SIMPLE_ARITHMETIC.read_text().splitlines(keepends=True)[:NUM_QUESTIONS]))
    _run(root, [sys.executable, str(REPO / "src/phi4_recipes/run_sft.py"), "recipes/tiny/sft.yaml", "--max_steps", "2"])
    pts = pts_argv(root / "outputs/tiny/sft", questions, root / "outputs/tiny/pts")
    _run(root, [sys.executable, str(REPO / "src/phi4_recipes/run_pts.py"), *pts])
    assert (root / "outputs/tiny/pts/pairs.jsonl").read_text().strip(), "the PTS settings must yield pairs"
    return root


def _run(workspace: Path, cmd: list[str]) -> str:
    env = {**script_env(), "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _changed(before: Path, after: Path) -> bool:
    """Whether training moved any weight the two checkpoints share."""
    import torch

    old, new = _weights(before), _weights(after)
    return any(not torch.equal(old[k], new[k]) for k in old.keys() & new.keys())


def _our_steps(output_dir: Path) -> int:
    return json.loads((output_dir / "trainer_state.json").read_text())["global_step"]


@pytest.fixture(scope="module")
def trl_runs(workspace) -> dict[str, Path]:
    """The README's commands, run as written: `trl sft`, the post-save step on what it saved, `trl dpo` (a LoRA
    adapter, as the tiny recipe asks) and the merge of that adapter into whole weights."""
    if not TRL.exists():
        pytest.skip("the `trl` console script is not installed next to this Python")
    outputs = {}
    for command in readme_trl_commands():
        argv = [str(TRL), *command[1:]] if command[0] == "trl" else [sys.executable, *command[1:]]
        log = _run(workspace, argv)
        assert "`gradient_checkpointing` is deprecated" not in log, "recipes use transformers 5's key"
        if command[0] == "trl":
            outputs[command[1]] = workspace / command[command.index("--output_dir") + 1]
        elif "phi4_recipes.merge_adapter" in command:
            outputs["merged"] = workspace / command[command.index("--output_dir") + 1]
    return outputs


def test_trl_sft_runs_the_tiny_sft_recipe_on_its_own_data(workspace, trl_runs):
    assert _changed(workspace / "outputs/tiny/midtrain", trl_runs["sft"])


def test_trl_dpo_runs_the_tiny_dpo_recipe_on_the_pts_export(workspace, trl_runs):
    from transformers import AutoModelForCausalLM

    assert (trl_runs["dpo"] / "adapter_config.json").is_file()  # the recipe's LoRA, as TRL saves it
    merged = trl_runs["merged"]
    assert _changed(workspace / "outputs/tiny/sft", merged)
    assert not (merged / "adapter_config.json").exists()
    assert AutoModelForCausalLM.from_pretrained(merged).config.architectures == ["Phi3ForCausalLM"]


def test_post_save_step_makes_trls_checkpoint_portable(trl_runs):
    import jinja2
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    from phi4_recipes.tokenizer import load_chat_template

    folder = trl_runs["sft"]
    config = json.loads((folder / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]
    assert config["architectures"] == ["Phi3ForCausalLM"] and config["sliding_window"] is None
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert not {"is_local", "local_files_only", "backend"} & set(tokenizer_config)
    assert tokenizer_config["chat_template"] == (folder / "chat_template.jinja").read_text() == load_chat_template()
    messages = [{"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": "5"}]
    rendered = jinja2.Environment().from_string(tokenizer_config["chat_template"]).render(
        messages=messages, add_generation_prompt=False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert tokenizer.apply_chat_template(messages, tokenize=False) == rendered
    assert AutoModelForCausalLM.from_pretrained(folder).config.rope_parameters["rope_theta"] == config["rope_theta"]
    before = sorted(p.read_bytes() for p in folder.glob("*.json*"))
    _run(folder.parent, [sys.executable, "-m", "phi4_recipes.portable", str(folder)])
    assert sorted(p.read_bytes() for p in folder.glob("*.json*")) == before, "a second run changes nothing"


def test_our_scripts_run_the_same_recipes_and_ship_the_plain_template(workspace):
    from huggingface_hub import ModelCard

    from phi4_recipes.tokenizer import load_chat_template

    sft = workspace / "outputs" / "tiny" / "sft"  # run_sft.py on the recipe's own `datasets:` (the fixture)
    dpo = workspace / "ours_dpo_pts"
    _run(workspace, [sys.executable, str(REPO / "src/phi4_recipes/run_dpo.py"), "recipes/tiny/dpo_pts.yaml",
                     "--output_dir", str(dpo), "--max_steps", "2"])
    pairs = [json.loads(line) for line in (workspace / "outputs/tiny/pts/pairs.jsonl").read_text().splitlines()]
    for out, stage, steps in ((sft, "sft", 2), (dpo, "dpo_pts", 2)):
        assert _our_steps(out) == steps
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["stage"] == stage
        # Trained with the {% generation %} template (SFT), saved with the plain one.
        assert (out / "chat_template.jinja").read_text() == load_chat_template()
        assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
        assert ModelCard.load(out / "README.md").data.model_name == f"phi4-recipes-{stage}"
    # The file `trl dpo` read as text is the one our trainer reads as the searched ids, every pair of it.
    assert json.loads((dpo / "manifest.json").read_text())["pairs"]["exact_ids"] == len(pairs)
    assert all(p["prompt"] and p["prompt_ids"] and isinstance(p["exact_retokenisation"], bool) for p in pairs)
