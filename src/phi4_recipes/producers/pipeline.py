"""A producer as a datatrove pipeline: :class:`RowReader` -> :class:`ProducerStep` -> :class:`RecordWriter`.

The reader takes the task's share of the input (rows hashed to this rank) minus the rows any shard already
holds; the step runs the producer's per-row work, loading its model only when a task has work; the writer
appends each record to the task's shard, fsynced. A task killed at any point reruns to the bytes an
uninterrupted task writes, and datatrove's completion markers make a resubmission skip finished tasks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from tqdm.auto import tqdm

from phi4_recipes.data.sources import fingerprint
from phi4_recipes.jsonl import JsonlAppender
from phi4_recipes.logs import setup_logging

from .executors import build_executor
from .records import check_settings, id_checker, read_records, shard_path, task_of

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class WorkUnit:
    """What one call of the producer's work handles: usually one input row (``row_ids == (id,)``); a judge
    batch is several rows, answered together. Units go to tasks by ``id``."""

    id: str
    row_ids: tuple[str, ...]
    payload: Any


@dataclass(frozen=True)
class ProducerInput:
    """The whole input of a run, read once: the units of work in order, and the datasets they came from as
    (name, dataset) pairs (none for built-in rows), which the manifest fingerprints."""

    units: list[WorkUnit]
    sources: list[tuple[str, Any]]

    def fingerprints(self) -> list[dict]:
        """The manifest's entry for each source (``data.sources.fingerprint``: sha256 of its files). Computed
        when asked, by the process that writes the manifest, not by every task that reads the input."""
        return [fingerprint(name, dataset) for name, dataset in self.sources]


class Producer(ABC):
    """What a producer supplies: its record type (``id_key``, ``check_record``), its input (``read_input``)
    and its per-row work.

    The object travels to every task (pickled for Slurm and Ray), so it holds only its options until
    :meth:`open` loads the model inside the task; :meth:`input` reads the input once per process.
    """

    stage: str = "producer"  # names the job, the logs and the progress bar
    id_key: str = "id"  # the record key holding the row id

    def __init__(self, args: Any):
        self.args = args
        self._input: ProducerInput | None = None

    def __getstate__(self) -> dict:
        return {"args": self.args}  # a task re-reads its rows rather than unpickling the whole input

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["args"])

    def input(self) -> ProducerInput:
        """The run's input, read on first use (in the main process and once in each task's process)."""
        if self._input is None:
            read = self.read_input()
            ids = [row for unit in read.units for row in unit.row_ids]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{self.stage}: row ids repeat; each input row needs its own id")
            self._input = read
        return self._input

    def units(self) -> list[WorkUnit]:
        return self.input().units

    def in_input_order(self, records: list[dict]) -> list[dict]:
        """``records`` as their rows stand in the input: shards hold them by task, so an export that must not
        depend on the task count sorts them back (rows no longer in the input go last, in shard order)."""
        order = {row: i for i, row in enumerate(row for unit in self.units() for row in unit.row_ids)}
        return sorted(records, key=lambda record: order.get(record[self.id_key], len(order)))

    @abstractmethod
    def check_record(self, record: Any) -> None:
        """Raise ValueError when a shard line is not this producer's record (it then names the file and line)."""

    @abstractmethod
    def read_input(self) -> ProducerInput:
        """The whole input, in order and validated (a bad row fails naming the dataset, row and column)."""

    @abstractmethod
    def open(self) -> None:
        """Load what the work needs (models, clients); called in the task, once, only when it has work."""

    @abstractmethod
    def work(self, unit: WorkUnit) -> Iterable[dict]:
        """The records of the unit's rows, in row order; each is a function of the row and the settings only."""

    @abstractmethod
    def close(self) -> None:
        """Release what :meth:`open` loaded."""


class RowReader(PipelineStep):
    name = "input rows"
    type = "📖 - READER"

    def __init__(self, producer: Producer, output_dir: str):
        super().__init__()
        self.producer, self.output_dir = producer, output_dir

    def run(self, data, rank: int = 0, world_size: int = 1):
        logger = setup_logging()
        units = self.producer.units()
        mine = [u for u in units if task_of(u.id, world_size) == rank]
        done = {r[self.producer.id_key] for r in read_records(self.output_dir, self.producer.id_key,
                                                                self.producer.check_record)}
        todo = [u for u in mine if not set(u.row_ids) <= done]
        rows_done = sum(row in done for u in mine for row in u.row_ids)
        logger.info("%s task %d/%d: %d of %d rows, %d already done", self.producer.stage, rank, world_size,
                    sum(len(u.row_ids) for u in mine), sum(len(u.row_ids) for u in units), rows_done)
        self.stat_update("rows_already_done", value=rows_done)
        for unit in tqdm(todo, desc=f"{self.producer.stage} task {rank}", unit="unit"):
            yield Document(text="", id=unit.id, metadata={"unit": unit, "done": done & set(unit.row_ids)})


class ProducerStep(PipelineStep):
    name = "producer work"
    type = "🔢 - PRODUCER"

    def __init__(self, producer: Producer):
        super().__init__()
        self.producer = producer

    def run(self, data, rank: int = 0, world_size: int = 1):
        opened = False
        try:
            for document in data:
                if not opened:
                    self.producer.open()
                    opened = True
                unit, done = document.metadata["unit"], document.metadata["done"]
                with self.track_time(unit="row"):
                    records = [r for r in self.producer.work(unit) if r[self.producer.id_key] not in done]
                for record in records:
                    self.stat_update("rows")
                    yield Document(text="", id=record[self.producer.id_key], metadata={"record": record})
        finally:
            if opened:
                self.producer.close()


class RecordWriter(PipelineStep):
    name = "task shard"
    type = "💽 - WRITER"

    def __init__(self, producer: Producer, output_dir: str):
        super().__init__()
        self.producer, self.output_dir = producer, output_dir

    def run(self, data, rank: int = 0, world_size: int = 1):
        validate = id_checker(self.producer.id_key, self.producer.check_record)
        with JsonlAppender(shard_path(self.output_dir, rank, world_size), validate) as appender:
            if appender.truncated_bytes:
                setup_logging().info("%s task %d: cut a %d-byte unfinished line", self.producer.stage, rank,
                                     appender.truncated_bytes)
            for document in data:
                appender.append(document.metadata["record"])
                self.stat_update("rows_written")
                yield document


def _reset_markers_if_plan_changed(logging_dir: Path, producer: Producer, tasks: int) -> None:
    """Completion markers hold only for the split they were written for: new rows or another task count
    must run again (rows already in a shard are still skipped, so nothing is redone)."""
    ids = "\n".join(u.id for u in producer.units())
    plan = {"tasks": tasks, "units": len(producer.units()), "unit_ids_sha256": hashlib.sha256(ids.encode()).hexdigest()}
    path = logging_dir / PLAN_FILE
    if path.is_file() and json.loads(path.read_text()) == plan:
        return
    shutil.rmtree(logging_dir / "completions", ignore_errors=True)
    logging_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1) + "\n")


def producer_executor(producer: Producer, options: Any, output_dir: str | Path):
    """The datatrove executor of ``options`` (executor, tasks, workers, slurm_*) over the producer's pipeline,
    with its logs, stats and completion markers in ``<output_dir>/logs``."""
    output_dir = Path(output_dir)
    logging_dir = output_dir / "logs"
    _reset_markers_if_plan_changed(logging_dir, producer, options.tasks)
    pipeline = [RowReader(producer, str(output_dir)), ProducerStep(producer), RecordWriter(producer, str(output_dir))]
    return build_executor(pipeline, options, tasks=options.tasks, logging_dir=logging_dir,
                          job_name=producer.stage.replace("/", "_"))


def run_producer(producer: Producer, options: Any, output_dir: str | Path, settings: dict[str, Any]) -> bool:
    """Run (local, ray) or submit (slurm) the producer's pipeline over ``options.tasks`` tasks.

    ``settings`` are what decide a record; a folder made with others is refused before any work. Returns
    whether every task is complete, i.e. the shards can be exported now (a Slurm submission returns False;
    rerun the command once the array is done).
    """
    check_settings(output_dir, settings)
    executor = producer_executor(producer, options, output_dir)
    if executor.get_incomplete_ranks():
        executor.run()
    return not executor.get_incomplete_ranks()
