"""Every script's options, and the one parser that reads them (``parse_recipe``).

One module per script family (training, pts, eval, curate); each dataclass subclasses TRL's where it
extends it, and declares every knob once, with its help text. The non-training families load on first
use, so a training script does not import curation or evaluation code just to read its recipe.
"""

from importlib import import_module

from trl import DPOConfig, ModelConfig, SFTConfig

from phi4_recipes.schema import RecipeError

from .parser import check_recipe_keys, load_recipe_yaml, normalise_argv, parse_recipe, split_cli_overrides
from .training import STAGES, ScriptArguments, Stage

# name -> submodule, imported when the name is first asked for
_LAZY = {
    "CurateConfig": "curate",
    "EVAL_BACKENDS": "eval",
    "EvalArguments": "eval",
    "EvalBackend": "eval",
    "JudgeScriptArguments": "judge",
    "PTSScriptArguments": "pts",
    "SynthScriptArguments": "synth",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STAGES",
    "DPOConfig",
    "ModelConfig",
    "RecipeError",
    "SFTConfig",
    "ScriptArguments",
    "Stage",
    "check_recipe_keys",
    "load_recipe_yaml",
    "normalise_argv",
    "parse_recipe",
    "split_cli_overrides",
    *_LAZY,
]
