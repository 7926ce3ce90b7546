"""Evaluate a checkpoint on the registry's benchmarks with lm-eval, the same way every time.

    python src/phi4_recipes/run_eval.py recipes/eval/phi4.yaml --model_name_or_path microsoft/phi-4
    python src/phi4_recipes/run_eval.py recipes/tiny/eval.yaml --model_name_or_path outputs/tiny/sft --limit 20

Every benchmark runs with the few-shot count and generation settings fixed in the benchmark registry
(eval/benchmarks.yaml), the model's chat template and the recipe's system prompt, and fixed seeds. The run
writes `<output_dir>/<run_name>.json` (scores, stderr, settings, versions, git commit) and the per-sample
outputs beside it; for a checkpoint of ours the scores also go into its model card (README.md in the
checkpoint folder), wherever `output_dir` is. `eval/leaderboard.py` turns several result files into a
comparison table.
"""

from __future__ import annotations

from pathlib import Path

from transformers import set_seed

from phi4_recipes.configs import parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.evaluation.lm_eval_runner import (
    build_lm,
    build_task_manager,
    evaluate_benchmark,
    export_judge_settings,
)
from phi4_recipes.evaluation.options import EvalArguments
from phi4_recipes.evaluation.registry import REGISTRY_FILE, load_registry, select_benchmarks
from phi4_recipes.evaluation.results import card_scores, default_output_dir, read_results, write_results
from phi4_recipes.hub import card_eval_results, refresh_model_card
from phi4_recipes.logs import get_logger, setup_logging
from phi4_recipes.recipe_checks import require_output_dir

logger = get_logger(__name__)


def update_model_card(results_path: Path, model_name_or_path: str) -> Path | None:
    """This run's scores into the card of a checkpoint of ours (one with a manifest), wherever the results were
    written (`make tiny` writes them to `<run>/eval_<stage>/`); the card keeps the scores of benchmarks this
    run did not score. None for other models."""
    checkpoint = Path(model_name_or_path)
    if not (checkpoint / "manifest.json").is_file():
        return None
    scores = {**card_eval_results(checkpoint / "README.md"), **card_scores(read_results(results_path))}
    return refresh_model_card(checkpoint, eval_results=scores)


def main(args: EvalArguments) -> Path:
    set_seed(args.seed)
    setup_logging()
    logger.info("Evaluating %s on %s", args.model_name_or_path, ", ".join(args.benchmarks))
    # The default output_dir (beside the checkpoint) is known only now; one the recipe gave was checked with it.
    require_output_dir(str(default_output_dir(args)), "output_dir", args.recipe_path)

    # Benchmarks and their fixed settings, and the judge for LLM-graded ones: fail before loading a model.
    registry = load_registry(args.registry or REGISTRY_FILE)
    benchmarks = select_benchmarks(registry, args.benchmarks, args.recipe_path)
    export_judge_settings(args, benchmarks)

    # Tasks: our packaged ones (plus any recipe task_paths), lm-eval's built-ins when needed.
    task_manager = build_task_manager(benchmarks, args.task_paths)

    # Model: loaded once, shared by every benchmark.
    lm = build_lm(args)

    runs = []
    for benchmark in benchmarks:
        run = evaluate_benchmark(lm, benchmark, args, task_manager)
        stderr = f" ± {run.stderr:.4f}" if run.stderr is not None else ""
        logger.info("%s (%s, %s-shot, n=%d): %.4f%s", benchmark.name, benchmark.metric, run.num_fewshot,
                    run.num_samples, run.score, stderr)
        runs.append(run)

    path = write_results(args, runs)
    logger.info("Wrote %s", path)
    card = update_model_card(path, args.model_name_or_path)
    if card is not None:
        logger.info("Model card %s now lists the scores", card)
    return path


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    (eval_args,) = parse_recipe(EvalArguments)
    main(eval_args)
