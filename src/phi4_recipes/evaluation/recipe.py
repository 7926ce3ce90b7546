"""The options of an evaluation run, read from a YAML recipe with `--key value` overrides.

Evaluation has no TRL trainer, so plain dataclasses are enough; the command line keeps the shape of the
training scripts (`run_eval.py recipe.yaml --model X --limit 20`, or `--config recipe.yaml`), and every key,
in the file or on the command line, must be a field of `EvalRecipe`.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from phi4_recipes.configs import RecipeError, load_recipe_yaml, split_cli_overrides

BACKENDS = ("hf", "vllm")


@dataclass
class EvalRecipe:
    """One evaluation run: which model, which benchmarks, and how every benchmark is prompted and scored."""

    model: str | None = None  # checkpoint folder or Hub id; usually given as --model
    benchmarks: list[str] = field(default_factory=list)  # names in the registry
    registry: str = "eval/benchmarks.yaml"
    task_paths: list[str] = field(default_factory=list)  # extra lm-eval task folders, searched after eval/tasks
    backend: str = "hf"  # hf (transformers) or vllm
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: str = "auto"
    batch_size: int = 8
    model_args: dict[str, Any] = field(default_factory=dict)  # passed to lm-eval's model constructor as is
    apply_chat_template: bool = True
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = True
    seed: int = 1234
    limit: int | None = None  # first N documents of every benchmark (quick checks; not comparable scores)
    max_gen_toks: int | None = None  # cap on every benchmark's generation length (tiny runs)
    bootstrap_iters: int = 1000
    output_dir: str | None = None  # default: <model folder>/eval, or outputs/eval/<hub id> for Hub models
    run_name: str | None = None  # default: the recipe file's stem
    judge_model: str | None = None  # OpenAI-compatible model that grades SimpleQA and ArenaHard
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    recipe_path: str | None = None  # filled in by the parser

    def __post_init__(self):
        source = self.recipe_path or "command line"
        if self.backend not in BACKENDS:
            raise RecipeError(f"{source}: backend '{self.backend}' is not one of {BACKENDS}")
        if self.limit is not None and self.limit < 1:
            raise RecipeError(f"{source}: limit must be >= 1, got {self.limit}")
        if self.max_gen_toks is not None and self.max_gen_toks < 1:
            raise RecipeError(f"{source}: max_gen_toks must be >= 1, got {self.max_gen_toks}")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a field annotation such as `int | None` or `list[str]`."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _check_value(key: str, value: Any, source: str) -> None:
    known = {f.name for f in fields(EvalRecipe) if f.name != "recipe_path"}
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RecipeError(f"{source}: unknown key '{key}'{hint}")
    annotation = typing.get_type_hints(EvalRecipe)[key]
    if not _matches(value, annotation):
        raise RecipeError(f"{source}: key '{key}' expects {annotation}, got {value!r}")


def parse_eval_recipe(argv: list[str]) -> EvalRecipe:
    """Read `[recipe.yaml | --config recipe.yaml] [--key value ...]`; command-line values win."""
    config_path, overrides = split_cli_overrides(argv)
    values: dict[str, Any] = {}
    if config_path is not None:
        for key, value in load_recipe_yaml(config_path).items():
            _check_value(key, value, config_path)
            values[key] = value
    for key, value in overrides.items():
        _check_value(key, value, "command line")
        values[key] = value
    recipe = EvalRecipe(**values, recipe_path=config_path)
    if not recipe.model:
        raise RecipeError(f"{config_path or 'command line'}: no model given; pass --model <folder or Hub id>")
    if not recipe.benchmarks:
        raise RecipeError(f"{config_path or 'command line'}: key 'benchmarks' lists no benchmark")
    if recipe.run_name is None:
        recipe.run_name = Path(config_path).stem if config_path else "eval"
    return recipe
