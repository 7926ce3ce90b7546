"""The benchmark registry (packaged benchmarks.yaml): each benchmark's lm-eval task, metric and fixed settings.

A benchmark is always run the same way: its few-shot count and generation settings live here, not on the
command line, so two runs of the same recipe on two checkpoints are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from phi4_recipes.recipe_checks import RecipeError, from_mapping
from phi4_recipes.resources import resource_path

REGISTRY_FILE = resource_path("benchmarks.yaml")
LOCAL_TASKS_DIR = resource_path("lm_eval_tasks")


@dataclass(frozen=True)
class Benchmark:
    """One registry entry.

    Attributes:
        name: registry key, e.g. "gpqa".
        task: lm-eval task, group or tag name (built in, or one of ours in LOCAL_TASKS_DIR).
        metric: lm-eval result key "<metric>,<filter>", e.g. "exact_match,flexible-extract".
        title: display name for tables ("GPQA").
        num_fewshot: fixed few-shot count.
        gen_kwargs: generation settings merged into the task's own (greedy, length caps).
        source: "lm_eval" (built-in task) or "local" (a task of ours in LOCAL_TASKS_DIR).
        needs_judge: the task grades with an LLM judge (recipe keys judge_model / judge_base_url).
    """

    name: str
    task: str
    metric: str
    title: str = ""
    num_fewshot: int = 0
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    source: Literal["lm_eval", "local"] = "lm_eval"
    notes: str = ""
    needs_judge: bool = False


def load_registry(path: str | Path = REGISTRY_FILE) -> dict[str, Benchmark]:
    """Parse the registry YAML (`benchmarks: {name: {task, metric, ...}}`), naming file and key on errors."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"benchmark registry not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise RecipeError(f"{path}: expected a top-level 'benchmarks' mapping of name -> settings")
    registry = {}
    for name, entry in entries.items():
        where = f"{path}: benchmark '{name}'"
        # `name` is the registry key, not a setting; the title defaults to it.
        settings = {"title": name, **entry} if isinstance(entry, dict) else entry
        registry[name] = from_mapping(Benchmark, settings, where, name=name)
    return registry


def select_benchmarks(registry: dict[str, Benchmark], names: list[str], recipe_path: str | None) -> list[Benchmark]:
    """The recipe's benchmarks in recipe order; an unknown name is an error naming the recipe."""
    unknown = [name for name in names if name not in registry]
    if unknown:
        raise RecipeError(
            f"{recipe_path or 'command line'}: benchmark(s) {unknown} are not in the registry "
            f"(known: {', '.join(sorted(registry))})"
        )
    return [registry[name] for name in names]


def unresolved_tasks(registry: dict[str, Benchmark], task_manager) -> list[str]:
    """Registry entries whose task is neither a built-in lm-eval task/group/tag nor one of ours."""
    known = set(task_manager.all_tasks)
    return [f"{b.name}: {b.task}" for b in registry.values() if b.task not in known]
