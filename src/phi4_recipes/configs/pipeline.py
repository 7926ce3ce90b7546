"""Options of run_pipeline.py: one recipe listing the stages of a whole run (recipes/tiny/pipeline.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phi4_recipes.recipe_checks import RecipeError

STAGE_KEYS = {"name", "script", "recipe", "args", "argv", "needs", "files", "server", "templates"}
SERVER_KEYS = {"module", "file_flag", "url"}


@dataclass
class PipelineArguments:
    """A run folder and the stages that fill it, in order; each stage writes `<run_dir>/<name>`."""

    run_dir: str = field(default="outputs/tiny", metadata={"help": "The run folder; every stage writes a subfolder."})
    rebase: str | None = field(
        default="outputs/tiny",
        metadata={"help": "The folder the stage recipes write to and read from; in a copy of each recipe (and of "
                  "each stage's `templates` files) written to <run_dir>/recipes/, it becomes run_dir, so one "
                  "recipe set serves any number of run folders (seeds)."})
    seed: int = field(default=42, metadata={"help": "Substituted for {seed} in the stages' args (the run's seed)."})
    threads: int | None = field(
        default=2,
        metadata={"help": "OMP/MKL threads of every stage. CPU float sums depend on how work is split across "
                  "threads, so fixing the count is what lets two machines reproduce each other's run."})
    stages: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={"help": "Each: name, script (a .py path or -m module), recipe, args ({key: value} passed as "
                  "--key value; {run}, {seed} and {url} are substituted), argv (positional arguments), needs "
                  "(earlier stages read), templates (more files to rebase, e.g. a mixture), files (inputs hashed into the fingerprint), server ({module, "
                  "file_flag, url}: a helper process started before the stage, its URL as {url})."})
    leaderboard: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "{stages: [...], labels: [...], benchmarks: [...], compare: [[a, b], ...]}: the eval "
                  "stages tabled at the end and the paired differences stated in words."})
    force: bool = field(default=False, metadata={"help": "Run every stage again, finished or not."})
    stop_after: str | None = field(default=None, metadata={"help": "Stop after this stage (quick partial runs)."})
    only: list[str] | None = field(
        default=None,
        metadata={"help": "Run just these stages (their needs must have finished); the others are left as they are."})
    recipe_path: str | None = field(default=None, init=False, metadata={"help": "Set by parse_recipe."})

    def __post_init__(self):
        names = []
        for i, stage in enumerate(self.stages):
            where = f"stages[{i}]"
            if not isinstance(stage, dict) or "name" not in stage or "script" not in stage:
                raise RecipeError(f"command line: {where} needs at least `name` and `script`, got {stage!r}")
            unknown = set(stage) - STAGE_KEYS
            if unknown:
                raise RecipeError(f"command line: {where} ({stage['name']}): unknown keys {sorted(unknown)}; "
                                  f"known: {sorted(STAGE_KEYS)}")
            for need in stage.get("needs", []):
                if need not in names:
                    raise RecipeError(f"command line: stage '{stage['name']}' needs '{need}', which is not an "
                                      f"earlier stage (earlier: {names})")
            if stage.get("server") is not None and set(stage["server"]) - SERVER_KEYS:
                raise RecipeError(f"command line: stage '{stage['name']}': server keys are {sorted(SERVER_KEYS)}")
            if stage["name"] in names:
                raise RecipeError(f"command line: stage name '{stage['name']}' appears twice")
            names.append(stage["name"])
        for name in self.only or []:
            if name not in names:
                raise RecipeError(f"command line: only: '{name}' is not a stage ({names})")
        if self.stop_after is not None and self.stop_after not in names:
            raise RecipeError(f"command line: stop_after '{self.stop_after}' is not a stage ({names})")
