"""Options every resumable producer script shares (run_pts, run_judge, run_synth): where its rows come from,
which sampling backend answers, and which shard of the work this process writes. Declared once here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phi4_recipes.generation import BACKENDS
from phi4_recipes.recipe_checks import RecipeError


@dataclass
class DatasetRowsArguments:
    """The input rows: a local file or folder, or a Hub dataset, each row with a stable id."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Local jsonl/parquet file or folder, or Hub id, of the input rows."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset config name."})
    dataset_split: str = field(default="train", metadata={"help": "Split of a Hub or save_to_disk dataset."})
    id_field: str | None = field(
        default="id", metadata={"help": "Column with a stable row id (shards are keyed by it); null: row index."})


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
                                        "{tensor_parallel_size: 8} (vllm), {base_url: ...} (openai)."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message before every prompt."})
    max_new_tokens: int = field(default=512, metadata={"help": "Cap on every model reply."})


@dataclass
class ShardArguments:
    """Where the append-only shards go, and which shard this process works on."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Shards, the exported data, the run's report and manifest. Required."})
    num_shards: int = field(default=1, metadata={"help": "Split the input rows into this many shards."})
    shard_index: int = field(default=0, metadata={"help": "The shard this process works on."})
    recipe_path: str | None = field(default=None, metadata={"help": "Filled in by the parser."})

    def check_producer_keys(self, required: tuple[str, ...]) -> str:
        """Required keys, the shard range and (where there is one) the backend; returns where the keys came from."""
        source = self.recipe_path or "command line"
        for key in required:
            if not getattr(self, key):
                raise RecipeError(f"{source}: key '{key}' is required")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise RecipeError(f"{source}: need 0 <= shard_index < num_shards, got {self.shard_index}, {self.num_shards}")
        backend = getattr(self, "backend", None)
        if backend is not None and backend not in BACKENDS:
            raise RecipeError(f"{source}: backend '{backend}' is not one of {BACKENDS}")
        return source
