"""The one producer contract (PTS, judge, synth): a datatrove pipeline of a reader of the input rows, the
producer's step, and a writer of its records, run by the executor the recipe names (local, slurm or ray).

A producer supplies only its record type and its per-row work (:class:`Producer`); datatrove owns task
sharding, completion markers, per-task logs and stats; :mod:`.records` owns the on-disk contract (one
append-only JSONL shard per task, keyed by a stable row id, resumable after kill -9).
"""

from .executors import EXECUTORS, build_executor
from .pipeline import Producer, ProducerInput, WorkUnit, producer_executor, run_producer
from .records import check_settings, read_records, shard_path, task_of

__all__ = ["EXECUTORS", "Producer", "ProducerInput", "WorkUnit", "build_executor", "check_settings", "producer_executor", "read_records",
           "run_producer", "shard_path", "task_of"]
