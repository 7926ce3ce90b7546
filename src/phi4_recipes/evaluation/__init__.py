"""Evaluation with lm-eval: the eval recipe, the benchmark registry, the runner, result files and reports."""

from phi4_recipes.evaluation.recipe import EvalRecipe, parse_eval_recipe
from phi4_recipes.evaluation.registry import Benchmark, load_registry

__all__ = ["Benchmark", "EvalRecipe", "load_registry", "parse_eval_recipe"]
