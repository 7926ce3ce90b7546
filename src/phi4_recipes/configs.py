"""Dataclass options of the stage scripts, and the recipe parser they share.

Every knob of a run lives in its YAML recipe. A recipe is parsed with TRL's `TrlParser` into
(`ScriptArguments`, a TRL config, `ModelConfig`); we add two things on top: a lone positional YAML is read
as `--config`, and every key of the YAML is checked against the dataclasses first, so a misspelt key fails
naming the key and the file before any model or dataset is touched.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from trl import DPOConfig, ModelConfig, SFTConfig, TrlParser
from trl import ScriptArguments as TrlScriptArguments

STAGES = ("pretrain", "midtrain", "sft", "dpo_pts", "dpo_judge")


class RecipeError(ValueError):
    """A recipe that cannot run: names the file and the key."""


@dataclass
class ScriptArguments(TrlScriptArguments):
    """Options shared by run_pretrain / run_sft / run_dpo, beside TRL's dataset_* fields."""

    stage: str = field(default="sft", metadata={"help": f"Recipe stage, one of {', '.join(STAGES)}."})
    dataset_mixture: str | None = field(
        default=None, metadata={"help": "YAML file of a token-budgeted data mixture (pretrain and midtrain)."}
    )
    mixture_phase: str | None = field(
        default=None, metadata={"help": "Phase of the mixture to build, e.g. pretrain or midtrain."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "'phi4' (cl100k + Phi-4 specials), 'tiny' (built-in tiny BPE), a folder or a Hub id. "
                  "Defaults to the model's own tokenizer."},
    )
    model_config_overrides: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Config fields to change when loading, e.g. {rope_theta: 250000, "
                  "max_position_embeddings: 16384} for midtraining."},
    )
    use_liger: bool = field(default=True, metadata={"help": "Liger kernels in Phi4ForCausalLM (CUDA only)."})
    dataset_max_rows: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows of the training set (quick runs)."}
    )


def recipe_dataclasses(stage_config: type) -> tuple[type, ...]:
    return (ScriptArguments, stage_config, ModelConfig)


# TrlParser reads this top-level key itself (environment variables to set before the run).
_PARSER_KEYS = {"env"}


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def normalise_argv(argv: list[str]) -> list[str]:
    """`script.py recipe.yaml --k v` -> `script.py --config recipe.yaml --k v`."""
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        return ["--config", argv[0], *argv[1:]]
    return list(argv)


def split_cli_overrides(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """`[recipe.yaml | --config recipe.yaml] [--k v | --k=v ...]` -> (recipe path, {k: v}).

    For the scripts that parse plain dataclasses rather than TRL's (eval, curate); values are read as YAML
    scalars or lists, so `--tasks 4` is an int and `--languages "[en, fr]"` a list.
    """
    argv = normalise_argv(argv)
    config_path, overrides, i = None, {}, 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise RecipeError(f"command line: expected --key value, got '{arg}'")
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            if i + 1 >= len(argv):
                raise RecipeError(f"command line: --{key} needs a value")
            value, i = argv[i + 1], i + 1
        i += 1
        key = key.replace("-", "_")
        if key == "config":
            config_path = value
        else:
            overrides[key] = yaml.safe_load(value)
    return config_path, overrides


def load_recipe_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of option: value, got {type(data).__name__}")
    return data


def check_recipe_keys(path: str | Path, dataclass_types: tuple[type, ...]) -> None:
    """Fail on any YAML key that no dataclass declares, naming the key, the file and the closest match."""
    known = {f.name for dc in dataclass_types for f in fields(dc)} | _PARSER_KEYS
    for key in load_recipe_yaml(path):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{path}: unknown key '{key}'{hint}")


def parse_recipe(stage_config: type, argv: list[str] | None = None):
    """Parse `[recipe.yaml | --config recipe.yaml] [--key value ...]` -> (script_args, training_args, model_args).

    Values given on the command line override the recipe.
    """
    argv = normalise_argv(sys.argv[1:] if argv is None else argv)
    dataclass_types = recipe_dataclasses(stage_config)
    config_path = _config_path(argv)
    if config_path is not None:
        check_recipe_keys(config_path, dataclass_types)
    parser = TrlParser(dataclass_types)
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    if script_args.stage not in STAGES:
        raise RecipeError(f"{config_path or 'command line'}: stage '{script_args.stage}' is not one of {STAGES}")
    script_args.recipe_path = config_path
    return script_args, training_args, model_args


__all__ = [
    "STAGES",
    "DPOConfig",
    "ModelConfig",
    "RecipeError",
    "SFTConfig",
    "ScriptArguments",
    "check_recipe_keys",
    "load_recipe_yaml",
    "parse_recipe",
    "split_cli_overrides",
]
