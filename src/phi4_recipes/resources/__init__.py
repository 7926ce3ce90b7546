"""Files the package reads at run time, shipped inside the wheel as package data.

- ``phi4.jinja``: the plain Phi-4 ChatML chat template checkpoints ship (renders as microsoft/phi-4's);
  ``phi4_training.jinja``: the same with ``{% generation %}`` markers, used only inside training.
- ``benchmarks.yaml``: the benchmark registry (lm-eval task, metric, fixed few-shot and generation settings).
- ``lm_eval_tasks/``: our lm-eval tasks (tiny offline sets, sandboxed HumanEval, judge-graded SimpleQA/ArenaHard).
- ``phi4_report.yaml``: the Phi-4 report's published scores, the leaderboard's reference rows.

The repository's ``chat_templates/`` and ``eval/`` point here with symlinks, for readers of the repo.
``phi4_recipes.io.resource_path(name)`` gives any of them as a real path.
"""
