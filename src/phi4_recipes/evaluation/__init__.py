"""Evaluation with lm-eval: the benchmark registry, the runner, result files and reports.

The run's options are `phi4_recipes.evaluation.options.EvalArguments`.
"""

from phi4_recipes.evaluation.registry import Benchmark, load_registry

__all__ = ["Benchmark", "load_registry"]
