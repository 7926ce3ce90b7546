"""Every script's options, and the one parser that reads them (``parse_recipe``).

    script.py recipe.yaml [--key value ...]
    script.py --config recipe.yaml [--key value ...]

TRL's ``TrlParser`` does the parsing (so ``--help`` lists every option with its help text, and ``env:`` in a
recipe sets environment variables); on top of it, every recipe key is checked against the dataclasses
before any model or dataset is touched: an unknown key, or a value of the wrong type, fails naming the
key, the file and the closest known key. Abbreviated options (``--learning_rat``) are refused.

This module holds the parser and the training scripts' options (run_pretrain, run_sft, run_dpo). Every other
script's options sit beside its code: ``pts/options.py``, ``judge/options.py``, ``synth/options.py``,
``curate/options.py``, ``evaluation/options.py``, the shared producer options in ``producers/options.py``, and
the pipeline's in ``run_pipeline.py``. A training script therefore imports no curation or evaluation code
just to read its recipe.

The SFT and DPO recipes hold only keys TRL knows, so `trl sft|dpo --config recipe.yaml` runs them too: data
as TRL's `dataset_name` or `datasets:` mixture (DatasetMixtureConfig), Liger as transformers'
`use_liger_kernel`, the stage implied by the script. The keys below that TRL does not know (mixture,
tokenizer, config overrides) are for pretraining and midtraining, which only our run_pretrain.py runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from trl import DatasetMixtureConfig, DPOConfig, ModelConfig, SFTConfig, TrlParser
from trl import ScriptArguments as TrlScriptArguments

from phi4_recipes.recipe_checks import (
    PARSER_FIELDS,
    RecipeError,
    RecipeSource,
    check_keys,
    closest_hint,
    describe_source,
    field_types,
    require_output_dir,
    type_name,
    value_matches,
)

# -- Options of the training scripts, beside TRL's own SFTConfig / DPOConfig / ModelConfig ---------------

Stage = Literal["pretrain", "midtrain", "sft", "dpo_pts", "dpo_judge"]
STAGES: tuple[str, ...] = get_args(Stage)


@dataclass
class ScriptArguments(TrlScriptArguments, DatasetMixtureConfig, RecipeSource):
    """Options shared by run_pretrain / run_sft / run_dpo, beside TRL's dataset_* and `datasets:` fields."""

    stage: Stage | None = field(
        default=None,
        metadata={"help": "Recipe stage (names the checkpoint in its card and manifest). Default: sft for run_sft, "
                  "the mixture phase for run_pretrain; run_dpo reads the round off its pairs (dpo_judge for run_judge's, "
                  "dpo_pts otherwise)."})
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
    chat_template: str | None = field(
        default=None,
        metadata={"help": "Unset: the tokenizer's own chat template (a Llama/Qwen/SmolLM model keeps its own). "
                  "'phi4': Phi-4's ChatML template, adding <|im_start|>/<|im_sep|>/<|im_end|> to a tokenizer "
                  "that lacks them (the model's embeddings grow to match)."},
    )
    model_config_overrides: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Config fields to change when loading, e.g. {rope_theta: 250000, "
                  "max_position_embeddings: 16384} for midtraining."},
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished run in output_dir (otherwise refused unless resuming)."})
    dataset_max_rows: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows of the training set (quick runs)."}
    )

    def __post_init__(self):
        DatasetMixtureConfig.__post_init__(self)  # `datasets:` entries -> DatasetConfig


# -- The recipe parser -----------------------------------------------------------------------------------

USAGE = "%(prog)s recipe.yaml [--key value ...]\n       %(prog)s --config recipe.yaml [--key value ...]"

# TrlParser reads this top-level key itself (environment variables to set before the run).
_PARSER_KEYS = {"env"}


def normalise_argv(argv: list[str]) -> list[str]:
    """`recipe.yaml --k v` -> `--config recipe.yaml --k v`; `--config=x` -> `--config x`."""
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        argv = ["--config", *argv]
    out = []
    for arg in argv:
        if arg.startswith("--config="):
            out += ["--config", arg.split("=", 1)[1]]
        else:
            out.append(arg)
    return out


def config_path_of(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":
            return argv[i + 1]
    return None


def load_recipe_yaml(path: str | Path) -> dict[str, Any]:
    """A recipe file as a mapping; a missing file, bad YAML or a non-mapping is an error naming the file."""
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


def option_types(dataclass_types: tuple[type, ...]) -> dict[str, Any]:
    """Every option a recipe or the command line may set, with its type (not the parser's own fields)."""
    types_by_key: dict[str, Any] = {}
    for dataclass_type in reversed(dataclass_types):  # the first dataclass declaring a key wins, as in TrlParser
        types_by_key.update(field_types(dataclass_type))
    for name in PARSER_FIELDS:
        types_by_key.pop(name, None)
    return types_by_key


def check_recipe(path: str | Path, dataclass_types: tuple[type, ...]) -> None:
    """Fail on a YAML key no dataclass declares, or a value of the wrong type, naming key and file."""
    types_by_key = option_types(dataclass_types)
    recipe = load_recipe_yaml(path)
    check_keys(recipe, set(types_by_key) | _PARSER_KEYS, str(path))
    for key, value in recipe.items():
        if key in types_by_key and not value_matches(value, types_by_key[key]):
            raise RecipeError(f"{path}: key '{key}' expects {type_name(types_by_key[key])}, got {value!r}")


def mapping_only(annotation: Any) -> bool:
    """Whether an option holds a mapping and nothing else (``dict[str, Any] | None``); not one that also takes
    a string, such as a path (``deepspeed: dict | str``)."""
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    options = [option for option in options if option is not type(None)]
    return bool(options) and all(option is dict or get_origin(option) is dict for option in options)


def mapping_option(text: str) -> dict[str, Any] | None:
    """A mapping given on the command line, in YAML or JSON flow style: ``--backend_kwargs '{max_batch_rows: 8}'``
    (argparse would call ``dict(text)`` and refuse every value)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"not a YAML mapping: {err}") from None
    if value is not None and not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expects a mapping such as '{{key: value}}' (or null), got {text!r}")
    return value


def check_cli_options(argv: list[str], dataclass_types: tuple[type, ...]) -> None:
    """An unknown ``--option`` fails naming it and the closest option (argparse would only list them all)."""
    known = set(option_types(dataclass_types)) | {"config", "help"}
    for arg in argv:
        if arg.startswith("--"):
            key = arg[2:].split("=", 1)[0].replace("-", "_")
            if key not in known and not (key.startswith("no_") and key[3:] in known):  # argparse's --no_<flag>
                raise RecipeError(f"command line: unknown option '--{key}'{closest_hint(key, known)}")


# Keys whose value must be a finite number >= 0. A negative or NaN learning rate parses as a float, and torch
# would only refuse it when the optimizer is built, after the model and data have loaded.
_FINITE_NON_NEGATIVE = ("learning_rate",)


def _check_finite_non_negative(instance, where: str) -> None:
    """Fail on a key of `_FINITE_NON_NEGATIVE` that is negative, NaN or infinite, naming the key and ``where``."""
    for key in _FINITE_NON_NEGATIVE:
        value = getattr(instance, key, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
            raise RecipeError(f"{where}: key '{key}' must be a finite number >= 0, got {value!r}")


def parse_recipe(*dataclass_types: type, argv: list[str] | None = None) -> tuple:
    """Parse ``[recipe.yaml | --config recipe.yaml] [--key value ...]`` into one instance per dataclass.

    Command-line values override the recipe. Our options (``RecipeSource``) get ``recipe_path`` (the YAML file or
    None) before their ``__post_init__`` checks run, so those name the file themselves.

    Raises:
        RecipeError: an unknown key, a wrong type, a negative or non-finite learning rate, or a dataclass check
            failed; the message names the file.
        SystemExit: argparse's own refusal of an unknown or abbreviated command-line option.
    """
    argv = normalise_argv(sys.argv[1:] if argv is None else argv)
    config_path = config_path_of(argv)
    if config_path is not None:
        check_recipe(config_path, dataclass_types)
    check_cli_options(argv, dataclass_types)
    overridden = len(argv) > (2 if config_path else 0)
    where = describe_source(config_path, overridden)
    parser = TrlParser(dataclass_types)
    parser.allow_abbrev = False
    # argparse's own usage line lists every option and neither form of the recipe, which it does not parse itself.
    parser.usage = USAGE
    mappings = {name for name, annotation in option_types(dataclass_types).items() if mapping_only(annotation)}
    for action in parser._actions:
        if action.dest in mappings:
            action.type = mapping_option
    if any(issubclass(t, RecipeSource) for t in dataclass_types):
        parser.set_defaults(recipe_path=config_path, recipe_overridden=overridden)
        for action in parser._actions:  # the parser's own fields are no options: keep them out of --help
            if action.dest in PARSER_FIELDS:
                action.help = argparse.SUPPRESS
    try:
        parsed = parser.parse_args_and_config(args=argv)
    except RecipeError:
        raise  # our own checks name the recipe already (RecipeSource.source)
    except (TypeError, ValueError) as err:  # a check of TRL's or transformers' own
        raise RecipeError(f"{where}: {err}") from err
    cli_keys = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}
    for instance in parsed:
        # A dataset named on the command line replaces the recipe's TRL `datasets:` mixture (overrides win).
        if "dataset_name" in cli_keys and "datasets" not in cli_keys and getattr(instance, "datasets", None):
            instance.datasets = []
        _check_finite_non_negative(instance, where)
        # Before any work: a stage that cannot write its output would otherwise find out at its first save.
        require_output_dir(getattr(instance, "output_dir", None), "output_dir", where)
    return tuple(parsed)


__all__ = [
    "STAGES",
    "DPOConfig",
    "ModelConfig",
    "RecipeError",
    "SFTConfig",
    "ScriptArguments",
    "Stage",
    "load_recipe_yaml",
    "check_recipe",
    "check_cli_options",
    "normalise_argv",
    "parse_recipe",
]
