"""Options every producer script shares (run_pts, run_judge, run_synth), beside the producer contract they
configure: where its rows come from (`DatasetRowsArguments`), which sampling backend answers
(`GeneratorArguments`) and the datatrove executor that runs it (`ExecutorArguments`, the keys of
recipes/curate). Each is declared once; `ProducerArguments` and `ModelProducerArguments` are the two sets a
producer script takes whole (judge's responders bring their own models; PTS and synth sample one model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from phi4_recipes.generation import BACKENDS
from phi4_recipes.recipe_checks import RecipeError, RecipeSource

from .executors import EXECUTORS


@dataclass
class DatasetRowsArguments:
    """The input rows: a local file or folder, or a Hub dataset, each row with a stable id."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Local jsonl/parquet file or folder, or Hub id, of the input rows."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset config name."})
    dataset_split: str = field(default="train", metadata={"help": "Split of a Hub or save_to_disk dataset."})
    id_field: str | None = field(
        default="id", metadata={"help": "Column with a stable row id (records are keyed by it); null: row index."})


@dataclass
class GeneratorArguments:
    """The model that answers, through one of generation/'s backends."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint folder or Hub id (transformers, vllm); the server's model id "
                                        "for the openai backend."})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder or Hub id; defaults to model_name_or_path."})
    backend: str = field(default="transformers", metadata={"help": f"One of {', '.join(BACKENDS)}."})
    backend_kwargs: dict[str, Any] | None = field(
        default=None, metadata={"help": "Passed to the backend, e.g. {max_batch_rows: 64} (transformers), "
                                        "{tensor_parallel_size: 2} (vllm), {api_key_env: ...} (openai)."})
    base_url: str | None = field(
        default=None, metadata={"help": "The endpoint of the openai backend (overrides backend_kwargs.base_url), "
                                        "e.g. http://127.0.0.1:8000/v1 for `vllm serve`."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message before every prompt."})
    max_new_tokens: int = field(default=512, metadata={"help": "Cap on every model reply."})

    def backend_options(self) -> dict[str, Any]:
        """The keyword arguments of ``build_generator``: ``backend_kwargs``, and ``base_url`` for the endpoint."""
        options = dict(self.backend_kwargs or {})
        if self.backend == "openai" and self.base_url:
            options["base_url"] = self.base_url
        return options


@dataclass
class ExecutorArguments(RecipeSource):
    """Where the records go, and the datatrove executor that runs the producer: the keys of recipes/curate."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Shards, the exported data, the run's report and manifest. Required."})
    executor: Literal["local", "slurm", "ray"] = field(
        default="local", metadata={"help": "datatrove executor: local processes, a Slurm array, or a Ray cluster."})
    tasks: int = field(default=1, metadata={"help": "datatrove tasks: the input rows are split into this many "
                                                    "shards by a hash of their id."})
    workers: int = field(default=1, metadata={"help": "Tasks run at once, local (processes; 1 runs them in this "
                                                      "process, one after another) and ray; slurm runs all."})
    local_start_method: Literal["fork", "forkserver", "spawn"] = field(
        # spawn: a producer's parent process has started torch's thread pools (and the judge its HTTP client
        # threads), and a forked child can inherit a lock held by one of those threads and hang on it forever;
        # the full test suite hit exactly that. A spawned worker starts clean, at the cost of its imports.
        default="spawn", metadata={"help": "multiprocessing start method of the local executor (workers > 1)."})
    slurm_partition: str | None = field(default=None, metadata={"help": "Slurm partition (required for slurm)."})
    slurm_time: str = field(default="24:00:00", metadata={"help": "Slurm time limit per task."})
    slurm_cpus_per_task: int = field(default=8, metadata={"help": "Slurm CPUs per task."})
    slurm_gpus_per_task: int = field(default=0, metadata={"help": "Slurm GPUs per task (vllm: tensor_parallel_size)."})
    slurm_mem_per_cpu_gb: int = field(default=4, metadata={"help": "Slurm memory per CPU, GB."})
    slurm_qos: str = field(default="normal", metadata={"help": "Slurm QOS."})
    slurm_venv_path: str | None = field(
        default=None, metadata={"help": "Activate script the Slurm jobs source, e.g. .venv/bin/activate."})
    slurm_logs_dir: str | None = field(default=None, metadata={"help": "Slurm log folder (default: "
                                                                       "output_dir/logs/slurm)."})
    ray_cpus_per_task: int = field(default=1, metadata={"help": "CPUs Ray reserves for each task."})
    ray_gpus_per_task: int = field(
        default=0, metadata={"help": "GPUs Ray reserves for each task (and makes visible to it); vllm: at least "
                                     "tensor_parallel_size."})

    def check_producer_keys(self, required: tuple[str, ...]) -> str:
        """Required keys, the executor keys and (where there is one) the backend; returns where the keys came from."""
        source = self.source
        for key in required:
            if not getattr(self, key):
                raise RecipeError(f"{source}: key '{key}' is required")
        if self.executor not in EXECUTORS:
            raise RecipeError(f"{source}: executor '{self.executor}' is not one of {EXECUTORS}")
        if self.tasks < 1 or self.workers < 1:
            raise RecipeError(f"{source}: tasks and workers must be >= 1, got tasks={self.tasks} "
                              f"workers={self.workers}")
        if self.executor == "slurm" and not self.slurm_partition:
            raise RecipeError(f"{source}: executor: slurm needs key 'slurm_partition'")
        backend = getattr(self, "backend", None)
        if backend is not None and backend not in BACKENDS:
            raise RecipeError(f"{source}: backend '{backend}' is not one of {BACKENDS}")
        if backend == "vllm":
            self.check_vllm_gpus(source, (self.backend_kwargs or {}).get("tensor_parallel_size", 1))
        return source

    def check_vllm_gpus(self, source: str, tensor_parallel_size: int) -> None:
        """An in-process vLLM engine of ``tensor_parallel_size`` GPUs fits the GPUs the executor gives a task.

        Slurm and Ray make only a task's own GPUs visible to it, so a task given fewer than the engine shards
        over fails after minutes in the queue; local workers all see every GPU of the machine, so two of them
        would put two engines on the same GPUs.
        """
        tp = int(tensor_parallel_size)
        given = {"slurm": ("slurm_gpus_per_task", self.slurm_gpus_per_task),
                 "ray": ("ray_gpus_per_task", self.ray_gpus_per_task)}.get(self.executor)
        if given is not None and given[1] < tp:
            raise RecipeError(f"{source}: backend vllm with tensor_parallel_size {tp} needs key '{given[0]}' >= {tp} "
                              f"(got {given[1]}): a task sees only the GPUs its executor gives it")
        if self.executor == "local" and min(self.workers, self.tasks) > 1:
            raise RecipeError(f"{source}: backend vllm with executor local needs key 'workers' 1 (got {self.workers}):"
                              " local workers all see this machine's GPUs, so each would load an engine onto the same"
                              " ones; shard one engine over them with tensor_parallel_size, or use slurm or ray")


@dataclass
class ProducerArguments(DatasetRowsArguments, ExecutorArguments):
    """A producer's input rows and its executor (run_judge: each responder names its own model)."""


@dataclass
class ModelProducerArguments(GeneratorArguments, ProducerArguments):
    """A producer that samples one model: its rows, its executor and the model (run_pts, run_synth)."""
