"""Evaluate a checkpoint on the registry's benchmarks with lm-eval, the same way every time.

    python src/phi4_recipes/run_eval.py recipes/eval/phi4.yaml --model microsoft/phi-4
    python src/phi4_recipes/run_eval.py recipes/tiny/eval.yaml --model outputs/tiny/sft --limit 20

Every benchmark runs with the few-shot count and generation settings fixed in eval/benchmarks.yaml, the
model's chat template and the recipe's system prompt, and fixed seeds. The run writes
`<output_dir>/<run_name>.json` (scores, stderr, settings, versions, git commit) and the per-sample outputs
beside it; `eval/leaderboard.py` turns several such files into a comparison table.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from transformers import set_seed

from phi4_recipes.evaluation.lm_eval_runner import (
    build_lm,
    build_task_manager,
    evaluate_benchmark,
    export_judge_settings,
)
from phi4_recipes.evaluation.recipe import EvalRecipe, parse_eval_recipe
from phi4_recipes.evaluation.registry import REPO_ROOT, load_registry, select_benchmarks
from phi4_recipes.evaluation.results import write_results

logger = logging.getLogger("run_eval")


def _registry_path(recipe: EvalRecipe) -> Path:
    # A relative registry path is read from the working directory if it is there, else from the repository.
    path = Path(recipe.registry)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def main(recipe: EvalRecipe) -> Path:
    set_seed(recipe.seed)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info("Evaluating %s on %s", recipe.model, ", ".join(recipe.benchmarks))

    # Benchmarks and their fixed settings, and the judge for LLM-graded ones: fail before loading a model.
    registry = load_registry(_registry_path(recipe))
    benchmarks = select_benchmarks(registry, recipe.benchmarks, recipe.recipe_path)
    export_judge_settings(recipe, benchmarks)

    # Tasks: ours under eval/tasks/ (plus any recipe task_paths), lm-eval's built-ins when needed.
    task_manager = build_task_manager(benchmarks, recipe.task_paths)

    # Model: loaded once, shared by every benchmark.
    lm = build_lm(recipe)

    runs = []
    for benchmark in benchmarks:
        run = evaluate_benchmark(lm, benchmark, recipe, task_manager)
        stderr = f" ± {run.stderr:.4f}" if run.stderr is not None else ""
        logger.info("%s (%s, %s-shot, n=%d): %.4f%s", benchmark.name, benchmark.metric, run.num_fewshot,
                    run.num_samples, run.score, stderr)
        runs.append(run)

    path = write_results(recipe, runs)
    logger.info("Wrote %s", path)
    return path


if __name__ == "__main__":
    main(parse_eval_recipe(sys.argv[1:]))
