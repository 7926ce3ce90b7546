"""Every training recipe parses with the pinned TRL, and every path it names exists or is made upstream."""

import dataclasses
import enum
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

from phi4_recipes.configs import (
    STAGES,
    DPOConfig,
    ModelConfig,
    RecipeError,
    ScriptArguments,
    SFTConfig,
    parse_recipe,
)
from phi4_recipes.data.mixture import load_mixture
from phi4_recipes.model_loading import is_preset
from phi4_recipes.recipe_checks import RecipeSource

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def recipe_stage(raw: dict) -> str | None:
    """A training recipe's stage: its `stage` key, or the one its script implies (TRL-runnable SFT/DPO recipes
    hold TRL's keys only): DPO for `beta`, SFT for any other recipe with a learning rate."""
    if raw.get("stage"):
        return raw["stage"]
    if "learning_rate" in raw and "beta" in raw:
        # run_dpo reads the round off its pairs: run_judge's (round 2) or PTS's (round 1).
        return "dpo_judge" if "judge/pairs" in str(raw.get("datasets") or raw.get("dataset_name")) else "dpo_pts"
    if "learning_rate" in raw:
        return "sft"
    return None


def training_recipes() -> list[Path]:
    return sorted(p for p in RECIPES.rglob("*.yaml") if recipe_stage(_load(p)) in STAGES)


def _stage_config(stage: str):
    return DPOConfig if stage.startswith("dpo") else SFTConfig


def parse_training(stage_config, argv):
    return parse_recipe(ScriptArguments, stage_config, ModelConfig, argv=argv)


def _produced_outputs() -> set[str]:
    """What a recipe's `output_dir` names, and what a pipeline's stages write without a recipe of their own
    (the tiny pipeline's `dpo_pts` merges the round's adapter into <run>/dpo_pts)."""
    produced = {_load(p)["output_dir"] for p in RECIPES.rglob("*.yaml") if "output_dir" in _load(p)}
    for path in RECIPES.rglob("pipeline.yaml"):
        pipeline = _load(path)
        for stage in pipeline.get("stages", []):
            output = (stage.get("args") or {}).get("output_dir", "")
            if output.startswith("{run}/"):
                produced.add(pipeline["rebase"] + output[len("{run}"):])
    return produced


def test_all_five_stages_exist_at_every_scale():
    for scale in (RECIPES, RECIPES / "tiny"):
        stages = {recipe_stage(_load(p)) for p in training_recipes() if p.parent == scale}
        assert stages == set(STAGES), scale


@pytest.mark.parametrize("recipe", training_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_parses_and_its_paths_exist(recipe, monkeypatch):
    monkeypatch.chdir(REPO)
    stage = recipe_stage(_load(recipe))
    # Full-scale recipes ask for bf16/fp16, which TrainingArguments refuses on a CPU; parse them as they are
    # otherwise.
    script_args, training_args, model_args = parse_training(
        _stage_config(stage), [str(recipe.relative_to(REPO)), "--bf16", "false", "--fp16", "false"]
    )
    assert script_args.stage in (stage, None)  # None: the script implies it (run_sft: sft, run_dpo: dpo_pts)
    produced = _produced_outputs()

    def check_path(value: str, what: str):
        if value.startswith("outputs/"):
            assert any(value == out or value.startswith(out + "/") for out in produced), (
                f"{recipe}: {what} {value} is not written by any recipe"
            )
        elif is_preset(value) or value in ("phi4", "tiny"):
            return
        elif "/" in value and not Path(value).exists() and not value.startswith(("data/", "recipes/")):
            return  # a Hub id: loaded by the same code as a folder, never fetched in tests
        else:
            assert Path(value).exists(), f"{recipe}: {what} {value} does not exist"

    check_path(model_args.model_name_or_path, "model_name_or_path")
    if script_args.tokenizer_name_or_path:
        check_path(script_args.tokenizer_name_or_path, "tokenizer_name_or_path")
    if script_args.dataset_name:
        check_path(script_args.dataset_name, "dataset_name")
    for entry in script_args.datasets:
        check_path(entry.data_files if entry.path in ("json", "parquet", "csv") else entry.path, "datasets[].path")
    if script_args.dataset_mixture:
        phases = load_mixture(script_args.dataset_mixture)
        assert script_args.mixture_phase in phases
        for phase in phases.values():
            for source in phase.sources:
                if source.path:
                    check_path(source.path, f"mixture source {source.name}")
    if stage in ("pretrain", "midtrain"):
        assert training_args.packing and training_args.eos_token == "<|endoftext|>"
    if stage == "sft":
        assert training_args.assistant_only_loss
    if stage == "midtrain":
        assert script_args.model_config_overrides["rope_theta"] == 250000


def test_full_scale_recipes_use_bf16_liger_checkpointing():
    for recipe in training_recipes():
        if recipe.parent != RECIPES:
            continue
        raw = _load(recipe)
        assert raw["bf16"] is True and raw["use_liger_kernel"] is True and raw["activation_checkpointing"] is True, recipe


def test_use_liger_kernel_goes_to_our_model_and_never_to_the_trainers_patch(monkeypatch, tmp_path):
    """transformers' `use_liger_kernel` (so `trl sft` reads the recipe) would make the Trainer patch the model,
    replacing Phi4ForCausalLM's forward; our scripts take it over and turn on the model's own kernels."""
    from phi4_recipes.training import start_run

    monkeypatch.chdir(REPO)
    script_args, training_args, model_args = parse_training(SFTConfig, [
        "recipes/sft.yaml", "--bf16", "false", "--model_name_or_path", "phi4-colab", "--output_dir", str(tmp_path)])
    assert training_args.use_liger_kernel is True
    plan = start_run(script_args, training_args, model_args, stage="sft")
    handed = plan.trainer_args(training_args)
    assert plan.use_liger is True and handed.use_liger_kernel is False and handed.push_to_hub is False
    # the recipe's config is a value: what the user asked for stays as given, and on record
    assert training_args.use_liger_kernel is True and plan.requested["use_liger_kernel"] is True
    assert handed is not training_args and handed.learning_rate == training_args.learning_rate
    assert plan.stage == "sft" and script_args.stage is None
    assert plan.named("dpo_pts").stage == "sft"  # a stage the recipe or script gave is kept


@pytest.mark.parametrize("name", ["ddp", "zero3", "fsdp"])
def test_accelerate_configs_load(name):
    config = load_config_from_file(str(RECIPES / "accelerate_configs" / f"{name}.yaml"))
    assert config.mixed_precision == "bf16"
    if name == "zero3":
        assert config.deepspeed_config["zero_stage"] == 3


def test_misspelt_key_fails_naming_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((RECIPES / "tiny" / "sft.yaml").read_text().replace("learning_rate", "learnig_rate"))
    with pytest.raises(RecipeError, match=r"bad\.yaml: unknown key 'learnig_rate' \(did you mean 'learning_rate'\?\)"):
        parse_training(SFTConfig, [str(bad)])


def test_cli_overrides_recipe_and_config_flag_works(monkeypatch):
    monkeypatch.chdir(REPO)
    _, positional, _ = parse_training(SFTConfig, ["recipes/tiny/sft.yaml", "--learning_rate", "1e-5"])
    _, flagged, _ = parse_training(SFTConfig, ["--config", "recipes/tiny/sft.yaml", "--learning_rate", "1e-5"])
    assert positional.learning_rate == flagged.learning_rate == 1e-5
    _, plain, _ = parse_training(SFTConfig, ["recipes/tiny/sft.yaml"])
    assert plain.learning_rate == _load(RECIPES / "tiny" / "sft.yaml")["learning_rate"]


def _parse_any(path: Path) -> tuple[object, set[str]]:
    """Parse a recipe with the parser of the script that runs it; also returns the keys the test overrides."""
    from phi4_recipes.curate.options import CurateConfig
    from phi4_recipes.evaluation.options import EvalArguments
    from phi4_recipes.pts.options import PTSScriptArguments

    raw, rel = _load(path), str(path.relative_to(REPO))
    if "accelerate_configs" in path.parts:
        return load_config_from_file(rel), set()
    if set(raw) == {"phases"}:
        return {"phases": load_mixture(rel)}, set()
    if recipe_stage(raw) in STAGES:
        return parse_training(_stage_config(recipe_stage(raw)), [rel, "--bf16", "false", "--fp16", "false"]), \
            {"bf16", "fp16"}
    if "curate" in path.parts:
        # local.yaml and slurm.yaml read the user's own crawl folders; every other key is checked as is
        return parse_recipe(CurateConfig, argv=[rel, "--input_dir", "tests/fixtures/html"]), {"input_dir"}
    if "benchmarks" in raw:
        # the model is always given at run time
        return parse_recipe(EvalArguments, argv=[rel, "--model_name_or_path", "outputs/tiny/sft"]), \
            {"model_name_or_path"}
    if "p_gap" in raw:
        return parse_recipe(PTSScriptArguments, argv=[rel]), set()
    if "responders" in raw:
        from phi4_recipes.judge.options import JudgeScriptArguments

        return parse_recipe(JudgeScriptArguments, argv=[rel]), set()
    if "stages" in raw:
        from phi4_recipes.run_pipeline import PipelineArguments

        return parse_recipe(PipelineArguments, argv=[rel]), set()
    if "workflow" in raw:
        from phi4_recipes.synth.options import SynthScriptArguments

        return parse_recipe(SynthScriptArguments, argv=[rel]), set()
    raise AssertionError(f"{rel}: no script claims this recipe")


def _holds(written, parsed) -> bool:
    """Whether a parsed value carries what the YAML wrote (defaults the YAML left out may be added)."""
    if dataclasses.is_dataclass(parsed) and not isinstance(parsed, type):
        parsed = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}
    if isinstance(parsed, enum.Enum):
        parsed = parsed.value
    if isinstance(written, dict):
        return isinstance(parsed, dict) and all(k in parsed and _holds(v, parsed[k]) for k, v in written.items())
    if isinstance(written, list):
        return isinstance(parsed, list) and len(written) == len(parsed) and all(map(_holds, written, parsed))
    return written == parsed


def _lost_keys(raw: dict, parsed: object, overridden: set[str]) -> list[str]:
    """Recipe keys whose value reaches no parsed option (`env` is the parser's own key)."""
    holders = parsed if isinstance(parsed, tuple) else (parsed,)
    lost = []
    for key, value in raw.items():
        if key in overridden or key == "env":
            continue
        if key == "report_to" and value == "none":  # transformers spells "no integration" as []
            value = []
        if key == "lora_target_modules" and isinstance(value, list) and len(value) == 1:
            value = value[0]  # TRL's ModelConfig unwraps a one-name list ([all-linear] -> "all-linear", as peft wants)
        found = [getattr(h, key) if not isinstance(h, dict) else h[key] for h in holders
                 if (key in h if isinstance(h, dict) else hasattr(h, key))]
        if not found or not _holds(value, found[0]):
            lost.append(key)
    return lost


@pytest.mark.parametrize("recipe", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_file_parses_with_its_script_and_every_key_reaches_it(recipe, monkeypatch):
    monkeypatch.chdir(REPO)
    parsed, overridden = _parse_any(recipe)
    assert _lost_keys(_load(recipe), parsed, overridden) == []


def test_a_key_the_parser_drops_or_changes_is_caught():
    raw = {"learning_rate": 1e-3, "datasets": [{"path": "json", "data_files": "a.jsonl"}]}
    kept = SimpleNamespace(learning_rate=1e-3, datasets=[SimpleNamespace()])
    assert _lost_keys(raw, (kept,), set()) == ["datasets"]
    assert _lost_keys({"learning_rate": 1e-3, "seed": 1}, (SimpleNamespace(learning_rate=2e-3),), set()) == [
        "learning_rate", "seed"]


def test_recipe_path_is_set_by_the_parser_before_the_checks_and_by_nothing_else(tmp_path, monkeypatch):
    """Every script's options know their recipe file in __post_init__ (errors name it from the start); neither
    a recipe key nor a command-line option can set it."""
    from phi4_recipes.evaluation.options import EvalArguments
    from phi4_recipes.pts.options import PTSScriptArguments

    monkeypatch.chdir(REPO)
    (pts,) = parse_recipe(PTSScriptArguments, argv=["recipes/tiny/pts.yaml"])
    assert (pts.recipe_path, pts.source) == ("recipes/tiny/pts.yaml", "recipes/tiny/pts.yaml")
    (over,) = parse_recipe(PTSScriptArguments, argv=["recipes/tiny/pts.yaml", "--p_gap", "0.3"])
    assert over.source == "recipes/tiny/pts.yaml (with command-line overrides)"
    no_benchmarks = tmp_path / "eval.yaml"
    no_benchmarks.write_text("benchmarks: []\n")
    # EvalArguments.__post_init__ raises with its own `source`: the file, not "command line"
    with pytest.raises(RecipeError, match=r"^\S*eval\.yaml \(with command-line overrides\): key 'benchmarks' lists"):
        parse_recipe(EvalArguments, argv=[str(no_benchmarks), "--model_name_or_path", "outputs/tiny/sft"])
    with pytest.raises(RecipeError, match=r"^command line: no model given"):
        parse_recipe(EvalArguments, argv=["--benchmarks", "tiny_arithmetic"])
    forged = tmp_path / "forged.yaml"
    forged.write_text((RECIPES / "tiny" / "pts.yaml").read_text() + "\nrecipe_path: other.yaml\n")
    with pytest.raises(RecipeError, match=r"forged\.yaml: unknown key 'recipe_path'"):
        parse_recipe(PTSScriptArguments, argv=[str(forged)])
    with pytest.raises(RecipeError, match=r"unknown option '--recipe_path'"):
        parse_recipe(PTSScriptArguments, argv=["recipes/tiny/pts.yaml", "--recipe_path", "x.yaml"])


def test_a_mapping_option_can_be_given_on_the_command_line(monkeypatch, capsys):
    """argparse read `--backend_kwargs '{}'` as dict('{}') and refused every value; a mapping option takes YAML
    or JSON flow style, and an option that also takes a path (deepspeed) is left a string."""
    from phi4_recipes.pts.options import PTSScriptArguments

    monkeypatch.chdir(REPO)
    (pts,) = parse_recipe(PTSScriptArguments, argv=["recipes/tiny/pts.yaml", "--backend_kwargs", "{}",
                                                    "--oracle_options", '{"timeout": 3}'])
    assert pts.backend_kwargs == {} and pts.oracle_options == {"timeout": 3}
    script, _, _ = parse_training(SFTConfig, ["recipes/tiny/sft.yaml", "--model_config_overrides",
                                              "{rope_theta: 250000}"])
    assert script.model_config_overrides == {"rope_theta": 250000}
    from phi4_recipes.configs import mapping_only
    from phi4_recipes.recipe_checks import field_types

    assert mapping_only(field_types(PTSScriptArguments)["backend_kwargs"])
    assert not mapping_only(field_types(SFTConfig)["deepspeed"])  # a dict or a path: stays as argparse reads it
    with pytest.raises(SystemExit):
        parse_recipe(PTSScriptArguments, argv=["recipes/tiny/pts.yaml", "--backend_kwargs", "[1, 2]"])
    assert "argument --backend_kwargs" in capsys.readouterr().err


def test_cli_prefix_and_bad_types_fail_naming_option_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(RecipeError, match=r"unknown option '--learning_rat' \(did you mean 'learning_rate'\?\)"):
        parse_training(SFTConfig, ["recipes/tiny/sft.yaml", "--learning_rat", "1e-5"])
    bad = tmp_path / "typed.yaml"
    bad.write_text((RECIPES / "tiny" / "sft.yaml").read_text() + "\nlearning_rate: fast\n".replace("learning_rate", "weight_decay"))
    with pytest.raises(RecipeError, match=r"typed\.yaml: key 'weight_decay' expects float, got 'fast'"):
        parse_training(SFTConfig, [str(bad)])
    wrong_stage = tmp_path / "stage.yaml"
    wrong_stage.write_text((RECIPES / "tiny" / "sft.yaml").read_text() + "\nstage: finetune\n")
    with pytest.raises(RecipeError, match=r"stage\.yaml: key 'stage' expects one of \['pretrain', .*'sft'.*\] \| null, got 'finetune'"):
        parse_training(SFTConfig, [str(wrong_stage)])


# An option each script's --help must list (a script missing here still has to print a full help).
HELP_OPTIONS = {"run_sft.py": ["--assistant_only_loss", "--datasets", "--use_liger_kernel"],
                "run_dpo.py": ["--beta", "--datasets"], "run_pretrain.py": ["--mixture_phase", "--model_config_overrides"],
                "run_pts.py": ["--p_gap"], "run_curate.py": ["--minhash_bands"], "run_eval.py": ["--benchmarks"]}


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "src" / "phi4_recipes").glob("run_*.py")))
def test_every_script_help_lists_its_options(script):
    import subprocess
    import sys

    for flag in ("--help", "-h"):
        out = subprocess.run([sys.executable, str(REPO / "src" / "phi4_recipes" / script), flag],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert out.stdout.lstrip().startswith("usage:") and out.stdout.count("\n  --") >= 3, out.stdout[-500:]
        for option in HELP_OPTIONS.get(script, []):
            assert option in out.stdout, (script, option)


# Every script's options, each beside its stage's code (the training scripts' in configs).
SCRIPT_OPTIONS = {"ScriptArguments": "phi4_recipes.configs", "PTSScriptArguments": "phi4_recipes.pts.options",
                  "JudgeScriptArguments": "phi4_recipes.judge.options",
                  "SynthScriptArguments": "phi4_recipes.synth.options", "CurateConfig": "phi4_recipes.curate.options",
                  "EvalArguments": "phi4_recipes.evaluation.options", "PipelineArguments": "phi4_recipes.run_pipeline"}


def redeclared_options(cls: type) -> dict[str, list[str]]:
    """Options declared by more than one class a script's arguments inherit from: {option: [classes]}."""
    owners = {f.name: [k.__qualname__ for k in cls.__mro__ if f.name in vars(k).get("__annotations__", {})]
              for f in dataclasses.fields(cls)}
    return {name: classes for name, classes in owners.items() if len(classes) > 1}


@pytest.mark.parametrize("name", sorted(SCRIPT_OPTIONS))
def test_every_option_is_declared_once_with_one_meaning(name):
    """An option re-declared in a subclass shadows its base's meaning and help (PTS's `seed` once meant the
    run's seed in the script and one search's seed in the algorithm's config)."""
    import importlib

    options = getattr(importlib.import_module(SCRIPT_OPTIONS[name]), name)
    assert redeclared_options(options) == {}
    assert issubclass(options, RecipeSource)  # every script's options know their recipe file


def test_a_redeclared_option_is_caught():
    @dataclasses.dataclass
    class Base:
        seed: int = 0

    @dataclasses.dataclass
    class Script(Base):
        seed: int = 42

    assert redeclared_options(Script) == {"seed": ["test_a_redeclared_option_is_caught.<locals>.Script",
                                                   "test_a_redeclared_option_is_caught.<locals>.Base"]}
