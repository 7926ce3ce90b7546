"""Run registry benchmarks through lm-eval's Python API with fixed seeds, few-shot counts and generation settings.

One `simple_evaluate` call per benchmark, on one loaded model: each benchmark keeps its own few-shot count
and generation settings, and the model is loaded once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phi4_recipes.evaluation.registry import LOCAL_TASKS_DIR, Benchmark
from phi4_recipes.recipe_checks import RecipeError

if TYPE_CHECKING:  # the options live with the script's, a layer above evaluation/
    from phi4_recipes.evaluation.options import EvalArguments

# Our judge-graded tasks (SimpleQA, ArenaHard) read their judge from these variables (lm-eval gives a task's
# process_results no access to the run's options).
JUDGE_ENV = {"judge_model": "PHI4_JUDGE_MODEL", "judge_base_url": "PHI4_JUDGE_BASE_URL",
             "judge_api_key_env": "PHI4_JUDGE_API_KEY_ENV"}


@dataclass
class BenchmarkRun:
    """What one benchmark produced: the headline score and lm-eval's full output (with per-sample logs)."""

    benchmark: Benchmark
    score: float
    stderr: float | None
    num_fewshot: int | None
    num_samples: int
    gen_kwargs: dict[str, Any]
    output: dict[str, Any]


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_task_manager(benchmarks: list[Benchmark], task_paths: list[str]):
    """lm-eval's TaskManager over our packaged tasks (and `task_paths`, which may shadow our tasks with local copies).

    lm-eval's ~15k built-in task configs are indexed only when a benchmark needs one (~10 s on 2 cores).
    """
    from lm_eval.tasks import TaskManager

    paths = [LOCAL_TASKS_DIR, *(Path(p) for p in task_paths)]
    for path in paths:
        if not path.is_dir():
            raise RecipeError(f"task folder not found: {path} (recipe key 'task_paths')")
    needs_builtin = any(b.source == "lm_eval" for b in benchmarks)
    return TaskManager(include_path=[str(p) for p in paths], include_defaults=needs_builtin)


def build_lm(args: EvalArguments):
    """lm-eval's HF model (default) or its vLLM model, loaded once for every benchmark of the run."""
    from lm_eval.api.registry import get_model

    if args.backend == "vllm":
        model_args = {"pretrained": args.model_name_or_path, "dtype": args.dtype, "batch_size": "auto",
                      "seed": args.seed}
    else:
        model_args = {"pretrained": args.model_name_or_path, "dtype": args.dtype, "batch_size": args.batch_size,
                      "device": resolve_device(args.device)}
    return get_model(args.backend)(**{**model_args, **args.model_args})


def export_judge_settings(args: EvalArguments, benchmarks: list[Benchmark]) -> None:
    """Hand the judge settings to judge-graded tasks; fail before any generation when they are missing."""
    judged = [b.name for b in benchmarks if b.needs_judge]
    if not judged:
        return
    if not args.judge_model or not args.judge_base_url:
        raise RecipeError(f"{args.recipe_path or 'command line'}: benchmark(s) {judged} are graded by an LLM "
                          "judge; set judge_model and judge_base_url (an OpenAI-compatible /v1 endpoint)")
    for key, variable in JUDGE_ENV.items():
        os.environ[variable] = str(getattr(args, key))


def _metric(results: dict, task: str, metric: str) -> tuple[float, float | None]:
    """Headline metric and its stderr; a tag (no aggregate entry) is the unweighted mean of its tasks."""
    name, _, filt = metric.partition(",")
    key, stderr_key = f"{name},{filt or 'none'}", f"{name}_stderr,{filt or 'none'}"
    if task in results and key in results[task]:
        entry = results[task]
        stderr = entry.get(stderr_key)
        return float(entry[key]), float(stderr) if isinstance(stderr, int | float) else None
    members = [entry for entry in results.values() if key in entry]
    if not members:
        raise KeyError(f"lm-eval returned no '{key}' for task '{task}'; it reported {sorted(results)} "
                       "(fix the metric in the benchmark registry)")
    # Mean of independent per-task estimates: its stderr is the root of the summed variances over n^2.
    scores = [float(entry[key]) for entry in members]
    errors = [entry.get(stderr_key) for entry in members]
    stderr = (sum(e * e for e in errors) ** 0.5 / len(errors)) if all(isinstance(e, int | float) for e in errors) else None
    return sum(scores) / len(scores), stderr


def evaluate_benchmark(lm, benchmark: Benchmark, args: EvalArguments, task_manager) -> BenchmarkRun:
    """Run one benchmark with its registry settings and the recipe's seed, chat template and system prompt."""
    from lm_eval import simple_evaluate

    gen_kwargs = dict(benchmark.gen_kwargs)
    if args.max_gen_toks is not None:
        gen_kwargs["max_gen_toks"] = min(args.max_gen_toks, gen_kwargs.get("max_gen_toks", args.max_gen_toks))
    output = simple_evaluate(
        model=lm,
        tasks=[benchmark.task],
        num_fewshot=benchmark.num_fewshot,
        limit=args.limit,
        gen_kwargs=gen_kwargs or None,
        apply_chat_template=args.apply_chat_template,
        system_instruction=args.system_prompt,
        fewshot_as_multiturn=args.fewshot_as_multiturn and args.apply_chat_template and benchmark.num_fewshot > 0,
        task_manager=task_manager,
        log_samples=True,
        bootstrap_iters=args.bootstrap_iters,
        random_seed=args.seed,
        numpy_random_seed=args.seed,
        torch_random_seed=args.seed,
        fewshot_random_seed=args.seed,
    )
    if output is None:  # lm-eval returns None on non-zero ranks of a distributed run
        raise RuntimeError("lm-eval returned no results on this process (multi-process runs are not supported)")
    score, stderr = _metric(output["results"], benchmark.task, benchmark.metric)
    n_shot = set(output.get("n-shot", {}).values())
    num_samples = sum(counts["effective"] for counts in output.get("n-samples", {}).values())
    return BenchmarkRun(benchmark=benchmark, score=score, stderr=stderr,
                        num_fewshot=n_shot.pop() if len(n_shot) == 1 else None,
                        num_samples=num_samples, gen_kwargs=gen_kwargs, output=output)
