"""The one recipe parser of every ``run_*.py``.

    script.py recipe.yaml [--key value ...]
    script.py --config recipe.yaml [--key value ...]

TRL's ``TrlParser`` does the parsing (so ``--help`` lists every option with its help text, and ``env:`` in a
recipe sets environment variables); on top of it, every recipe key is checked against the dataclasses
before any model or dataset is touched: an unknown key, or a value of the wrong type, fails naming the
key, the file and the closest known key. Abbreviated options (``--learning_rat``) are refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from trl import TrlParser

from phi4_recipes.schema import RecipeError, check_keys, closest_hint, field_types, type_name, value_matches

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


def check_recipe(path: str | Path, dataclass_types: tuple[type, ...]) -> None:
    """Fail on a YAML key no dataclass declares, or a value of the wrong type, naming key and file."""
    types_by_key: dict[str, Any] = {}
    for dataclass_type in reversed(dataclass_types):  # the first dataclass declaring a key wins, as in TrlParser
        types_by_key.update(field_types(dataclass_type))
    recipe = load_recipe_yaml(path)
    check_keys(recipe, set(types_by_key) | _PARSER_KEYS, str(path))
    for key, value in recipe.items():
        if key in types_by_key and not value_matches(value, types_by_key[key]):
            raise RecipeError(f"{path}: key '{key}' expects {type_name(types_by_key[key])}, got {value!r}")


def check_cli_options(argv: list[str], dataclass_types: tuple[type, ...]) -> None:
    """An unknown ``--option`` fails naming it and the closest option (argparse would only list them all)."""
    known = {name for dataclass_type in dataclass_types for name in field_types(dataclass_type)} | {"config", "help"}
    for arg in argv:
        if arg.startswith("--"):
            key = arg[2:].split("=", 1)[0].replace("-", "_")
            if key not in known and not (key.startswith("no_") and key[3:] in known):  # argparse's --no_<flag>
                raise RecipeError(f"command line: unknown option '--{key}'{closest_hint(key, known)}")


def parse_recipe(*dataclass_types: type, argv: list[str] | None = None) -> tuple:
    """Parse ``[recipe.yaml | --config recipe.yaml] [--key value ...]`` into one instance per dataclass.

    Command-line values override the recipe. Each instance gets ``recipe_path`` (the YAML file or None).

    Raises:
        RecipeError: an unknown key, a wrong type, or a dataclass check failed; the message names the file.
        SystemExit: argparse's own refusal of an unknown or abbreviated command-line option.
    """
    argv = normalise_argv(sys.argv[1:] if argv is None else argv)
    config_path = config_path_of(argv)
    if config_path is not None:
        check_recipe(config_path, dataclass_types)
    check_cli_options(argv, dataclass_types)
    overridden = len(argv) > (2 if config_path else 0)
    where = (f"{config_path} (with command-line overrides)" if overridden else config_path) if config_path \
        else "command line"
    parser = TrlParser(dataclass_types)
    parser.allow_abbrev = False
    try:
        parsed = parser.parse_args_and_config(args=argv)
    except RecipeError as err:
        # A dataclass's __post_init__ ran before the path was known; say which file held the bad value.
        message = str(err)
        message = message.replace("command line", where, 1) if "command line" in message else f"{where}: {message}"
        raise RecipeError(message) from err
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{where}: {err}") from err
    cli_keys = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}
    for instance in parsed:
        instance.recipe_path = config_path
        # A dataset named on the command line replaces the recipe's TRL `datasets:` mixture (overrides win).
        if "dataset_name" in cli_keys and "datasets" not in cli_keys and getattr(instance, "datasets", None):
            instance.datasets = []
    return tuple(parsed)


# Transitional: the eval, curate and PTS parsers still read recipes this way until they move onto parse_recipe.
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


def check_recipe_keys(path: str | Path, dataclass_types: tuple[type, ...]) -> None:
    """Fail on any YAML key that no dataclass declares, naming the key, the file and the closest match."""
    known = {f.name for dc in dataclass_types for f in dataclasses.fields(dc)} | _PARSER_KEYS
    for key in load_recipe_yaml(path):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{path}: unknown key '{key}'{hint}")


