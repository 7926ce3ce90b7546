"""Files the package reads at run time, shipped inside the wheel as package data.

- ``phi4.jinja``: the plain Phi-4 ChatML chat template checkpoints ship (renders as microsoft/phi-4's);
  ``phi4_training.jinja``: the same with ``{% generation %}`` markers, used only inside training.
- ``benchmarks.yaml``: the benchmark registry (lm-eval task, metric, fixed few-shot and generation settings).
- ``lm_eval_tasks/``: our lm-eval tasks (tiny offline sets, sandboxed HumanEval, judge-graded SimpleQA/ArenaHard).
- ``phi4_report.yaml``: the Phi-4 report's published scores, the leaderboard's reference rows.

The repository's ``chat_templates/`` and ``eval/`` point here with symlinks, for readers of the repo.
``resource_path(name)`` gives any of them as a real path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    """A file or folder of ``phi4_recipes/resources`` as a real path (lm-eval's task loader needs one).

    The package is installed as plain files (a wheel, an editable or a source checkout); a zip-imported
    package has no real paths, and that is reported rather than worked around.
    """
    path = files("phi4_recipes.resources") / name
    if not isinstance(path, Path):
        raise RuntimeError(f"phi4_recipes resource '{name}' is not on the file system ({path!r}); "
                           "install phi4-recipes as files, not as a zip")
    if not path.exists():
        raise FileNotFoundError(f"phi4_recipes resource '{name}' not found at {path}; the installed package "
                                "is missing its data files (reinstall phi4-recipes)")
    return path

