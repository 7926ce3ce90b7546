"""The datatrove executor a recipe names (``executor: local | slurm | ray``, ``tasks``, ``workers``), built in
one place for curation and the producers alike.

``options`` is a recipe's options object: it reads ``executor``, ``workers``, ``local_start_method`` and, for
Slurm, the ``slurm_*`` keys (partition, time, cpus_per_task, gpus_per_task, mem_per_cpu_gb, qos, venv_path,
logs_dir), for Ray the ``ray_*`` keys (cpus_per_task, gpus_per_task).
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats

EXECUTORS = ("local", "slurm", "ray")


class InProcessExecutor(LocalPipelineExecutor):
    """``LocalPipelineExecutor`` with ``workers=1``: the tasks run one after another in this process, with
    datatrove's logs, stats and completion markers, but without the multiprocessing Manager its ``run`` starts
    for a worker pool. That Manager's server process outlives a run killed with kill -9 (orphaned, for good),
    and one process needs no queue of local ranks."""

    def run(self):
        if self.workers != 1 or self.depends is not None:
            return super().run()
        self._launched = True
        ranks = self.get_incomplete_ranks(range(self.local_rank_offset, self.local_rank_offset + self.local_tasks))
        if not ranks:
            return PipelineStats()
        self.save_executor_as_json()
        pipeline, stats = self.pipeline, []
        for rank in ranks:
            # a fresh copy per task, as datatrove does, so one task's step stats do not add to the next one's
            self.pipeline = deepcopy(pipeline) if len(ranks) > 1 else pipeline
            stats.append(self._run_for_rank(rank))
        self.pipeline = pipeline
        total = sum(stats, start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as handle:
            total.save_to_disk(handle)
        return total


def build_executor(pipeline: list, options: Any, *, tasks: int, logging_dir: str | Path, job_name: str,
                   depends: Any = None):
    """A datatrove executor running ``pipeline`` as ``tasks`` tasks, its logs, stats and completion markers in
    ``logging_dir``; ``depends`` is an executor of the same kind that must finish first."""
    logging_dir = str(logging_dir)
    if options.executor == "local":
        return InProcessExecutor(pipeline=pipeline, tasks=tasks, workers=min(options.workers, tasks),
                                     logging_dir=logging_dir, depends=depends,
                                     start_method=options.local_start_method)
    if options.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            pipeline=pipeline, tasks=tasks, time=options.slurm_time,
            partition=options.slurm_partition, cpus_per_task=options.slurm_cpus_per_task,
            mem_per_cpu_gb=options.slurm_mem_per_cpu_gb, qos=options.slurm_qos, venv_path=options.slurm_venv_path,
            gpus_per_task=getattr(options, "slurm_gpus_per_task", 0),  # curation runs on CPUs only
            job_name=job_name, logging_dir=logging_dir, depends=depends,
            slurm_logs_folder=options.slurm_logs_dir or str(Path(logging_dir) / "slurm"))
    if options.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        # Ray makes a task's reserved GPUs (and only those) visible to it: an in-process vLLM engine needs them
        return RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=options.workers, logging_dir=logging_dir,
                                   depends=depends, cpus_per_task=options.ray_cpus_per_task,
                                   gpus_per_task=options.ray_gpus_per_task)
    raise ValueError(f"executor '{options.executor}' is not one of {EXECUTORS}")
