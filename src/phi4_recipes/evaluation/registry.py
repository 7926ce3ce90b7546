"""The benchmark registry (eval/benchmarks.yaml): each benchmark's lm-eval task, metric and fixed settings.

A benchmark is always run the same way: its few-shot count and generation settings live here, not on the
command line, so two runs of the same recipe on two checkpoints are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from phi4_recipes.configs import RecipeError

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_TASKS_DIR = REPO_ROOT / "eval" / "tasks"

_REQUIRED = ("task", "metric")
_OPTIONAL = ("title", "num_fewshot", "gen_kwargs", "source", "notes", "needs_judge")


@dataclass(frozen=True)
class Benchmark:
    """One registry entry.

    Attributes:
        name: registry key, e.g. "gpqa".
        task: lm-eval task, group or tag name (built in, or defined under eval/tasks/).
        metric: lm-eval result key "<metric>,<filter>", e.g. "exact_match,flexible-extract".
        title: display name for tables ("GPQA").
        num_fewshot: fixed few-shot count.
        gen_kwargs: generation settings merged into the task's own (greedy, length caps).
        source: "lm_eval" (built-in task) or "local" (a task of ours under eval/tasks/).
        needs_judge: the task grades with an LLM judge (recipe keys judge_model / judge_base_url).
    """

    name: str
    task: str
    metric: str
    title: str = ""
    num_fewshot: int = 0
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "lm_eval"
    notes: str = ""
    needs_judge: bool = False

    @property
    def metric_name(self) -> str:
        return self.metric.split(",", 1)[0]

    @property
    def metric_filter(self) -> str:
        return self.metric.split(",", 1)[1] if "," in self.metric else "none"


def load_registry(path: str | Path) -> dict[str, Benchmark]:
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
        if not isinstance(entry, dict):
            raise RecipeError(f"{path}: benchmark '{name}' must be a mapping, got {type(entry).__name__}")
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            raise RecipeError(f"{path}: benchmark '{name}' lacks key(s) {missing}")
        unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise RecipeError(f"{path}: benchmark '{name}' has unknown key(s) {unknown}")
        if entry.get("source", "lm_eval") not in ("lm_eval", "local"):
            raise RecipeError(f"{path}: benchmark '{name}': source must be 'lm_eval' or 'local'")
        registry[name] = Benchmark(name=name, **{"title": name, **entry})
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
    """Registry entries whose task is neither a built-in lm-eval task/group/tag nor one under eval/tasks/."""
    known = set(task_manager.all_tasks)
    return [f"{b.name}: {b.task}" for b in registry.values() if b.task not in known]
