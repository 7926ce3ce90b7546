"""The options of a Pivotal Token Search run, read from a YAML recipe with `--key value` overrides.

    python src/phi4_recipes/run_pts.py recipes/tiny/pts.yaml --max_questions 4
    python src/phi4_recipes/run_pts.py --config recipes/pts.yaml --num_shards 8 --shard_index 3

Every search knob of :class:`~phi4_recipes.pts.PTSConfig` is a top-level key here too (except ``seed``:
each question's search seed derives from the run's ``seed`` and the question id), so a recipe reads flat.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import Any

from trl import TrlParser

from phi4_recipes.configs import RecipeError, check_recipe_keys, normalise_argv
from phi4_recipes.generation import BACKENDS
from phi4_recipes.verify import ORACLE_KINDS

from .config import PTSConfig


@dataclass
class PTSScriptArguments:
    """One PTS run: which model answers which questions, how the search runs, where the shards go."""

    # Model and sampling backend.
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint folder or Hub id (transformers, vllm); the server's model "
                                        "id for the openai backend."})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder or Hub id; defaults to model_name_or_path."})
    backend: str = field(default="transformers", metadata={"help": f"One of {', '.join(BACKENDS)}."})
    backend_kwargs: dict[str, Any] | None = field(
        default=None, metadata={"help": "Passed to the backend, e.g. {max_batch_rows: 64} (transformers), "
                                        "{tensor_parallel_size: 8} (vllm), {base_url: ...} (openai)."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message before each question."})
    max_new_tokens: int = field(default=512, metadata={"help": "Cap on each response and each rollout."})
    temperature: float = field(
        default=1.0, metadata={"help": "Keep 1.0: the search's token log-probs are at temperature 1."})
    top_p: float = field(default=1.0, metadata={"help": "Keep 1.0, for the same reason as temperature."})

    # Questions.
    dataset_name: str | None = field(default=None, metadata={"help": "Local jsonl/parquet file or folder, or Hub id."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset config name."})
    dataset_split: str = field(default="train", metadata={"help": "Split of a Hub or save_to_disk dataset."})
    id_field: str | None = field(
        default="id", metadata={"help": "Column with a stable question id; null uses the row index."})
    question_field: str = field(default="question", metadata={"help": "Column with the question text."})
    answer_field: str = field(
        default="answer", metadata={"help": "Column with the reference: the answer (math, exact), a letter or "
                                            "index (choice), a list of tests (code)."})
    oracle: str = field(default="math", metadata={"help": f"Oracle kind for every row: {', '.join(ORACLE_KINDS)}."})
    oracle_field: str | None = field(
        default=None, metadata={"help": "Column holding each row's oracle kind (overrides `oracle`)."})
    oracle_options: dict[str, Any] | None = field(
        default=None, metadata={"help": "Options of verify.make_oracle, e.g. {timeout: 5} or {normalize: false}."})
    max_questions: int | None = field(
        default=None, metadata={"help": "Use only the first N rows (before sharding)."})

    # Which sampled responses are searched.
    responses_per_question: int = field(
        default=4, metadata={"help": "Responses sampled per question before choosing which to search."})
    search_all_responses: bool = field(
        default=False, metadata={"help": "Search every sampled response instead of one incorrect and one "
                                         "correct response (the first of each, when they exist)."})

    # Pivotal Token Search (PTSConfig fields, passed through).
    p_gap: float = field(default=0.2, metadata={"help": "A token is pivotal when it moves p by this much."})
    p_min: float = field(default=0.2, metadata={"help": "Skip questions with p(query) below this."})
    p_max: float = field(default=0.8, metadata={"help": "Skip questions with p(query) above this."})
    min_trials: int = 16
    max_trials: int = 64
    confidence_z: float = 1.5
    unresolved_margin: float = 0.3
    confirm: bool = True
    nominate_margin: float = 0.25
    confirm_z: float = 2.0
    confirm_max_trials: int = 128
    use_logprobs: bool = True
    make_pairs: bool = True
    pair_trials: int = 32
    pair_max_alternatives: int = 3

    # Output and work split.
    output_dir: str | None = field(default=None, metadata={"help": "Shards, pairs.jsonl, plots/, manifest."})
    num_shards: int = field(default=1, metadata={"help": "Split the questions into this many shards."})
    shard_index: int = field(default=0, metadata={"help": "The shard this process works on."})
    seed: int = field(default=42, metadata={"help": "Seeds every sample and search (per question id)."})
    plot_max: int = field(default=8, metadata={"help": "Plots of p along a searched response; 0 for none."})

    recipe_path: str | None = field(default=None, metadata={"help": "Filled in by the parser."})

    def __post_init__(self) -> None:
        source = self.recipe_path or "command line"
        if self.backend not in BACKENDS:
            raise RecipeError(f"{source}: backend '{self.backend}' is not one of {BACKENDS}")
        if self.oracle not in ORACLE_KINDS:
            raise RecipeError(f"{source}: oracle '{self.oracle}' is not one of {ORACLE_KINDS}")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise RecipeError(f"{source}: need 0 <= shard_index < num_shards, got {self.shard_index}, "
                              f"{self.num_shards}")
        if self.responses_per_question < 1:
            raise RecipeError(f"{source}: responses_per_question must be >= 1")
        if self.max_questions is not None and self.max_questions < 1:
            raise RecipeError(f"{source}: max_questions must be >= 1")
        try:
            self.pts_config(self.seed)
        except ValueError as err:
            raise RecipeError(f"{source}: {err}") from err

    def result_settings(self) -> dict[str, Any]:
        """The options that change what a question's record holds; a resumed run must not change them.

        Not included: where and how the work runs (backend, shards, output, plots, max_questions).
        """
        names = ("model_name_or_path", "tokenizer_name_or_path", "system_prompt", "max_new_tokens", "temperature",
                 "top_p", "question_field", "answer_field", "oracle", "oracle_field", "oracle_options",
                 "responses_per_question", "search_all_responses", "seed")
        knobs = {f.name for f in fields(PTSConfig) if f.name != "seed"}
        return {name: getattr(self, name) for name in (*names, *sorted(knobs))}

    def pts_config(self, seed: int) -> PTSConfig:
        """The search settings of this run, with one question's search seed."""
        knobs = {f.name: getattr(self, f.name) for f in fields(PTSConfig) if f.name != "seed"}
        return PTSConfig(seed=seed, **knobs)


def parse_pts_recipe(argv: list[str] | None = None) -> PTSScriptArguments:
    """Read `[recipe.yaml | --config recipe.yaml] [--key value ...]`; command-line values win.

    Unknown recipe keys fail naming the key and the file, before any model or dataset is loaded.
    """
    argv = normalise_argv(sys.argv[1:] if argv is None else argv)
    config_path = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), None)
    config_path = config_path or next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if config_path is not None:
        check_recipe_keys(config_path, (PTSScriptArguments,))
    try:
        (args,) = TrlParser((PTSScriptArguments,)).parse_args_and_config(args=argv)
    except RecipeError as err:
        # __post_init__ ran before the path was known; say which file held the bad value.
        where = f"{config_path} (with command-line overrides)" if config_path else "command line"
        raise RecipeError(str(err).replace("command line", where, 1)) from err
    args.recipe_path = config_path
    source = config_path or "command line"
    for required in ("model_name_or_path", "dataset_name", "output_dir"):
        if not getattr(args, required):
            raise RecipeError(f"{source}: key '{required}' is required")
    return args
