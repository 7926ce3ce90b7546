"""Options of ``run_pts.py``: which model answers which questions, how the search runs, where the shards go.

    python src/phi4_recipes/run_pts.py recipes/tiny/pts.yaml --max_questions 4
    python src/phi4_recipes/run_pts.py --config recipes/pts.yaml --executor slurm --tasks 8

Two halves, each declared (and documented) once, so a recipe reads flat: the search knobs are the
algorithm's own :class:`~phi4_recipes.pts.config.SearchSettings`, and the rows, model and executor options a
sampling producer takes (:class:`~phi4_recipes.producers.options.ModelProducerArguments`); this file adds
what only a PTS run has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from phi4_recipes.producers.options import ModelProducerArguments
from phi4_recipes.recipe_checks import RecipeError
from phi4_recipes.verify import ORACLE_KINDS

from .config import SearchSettings

REQUIRED_KEYS = ("model_name_or_path", "dataset_name", "output_dir")


@dataclass
class PTSScriptArguments(SearchSettings, ModelProducerArguments):
    """One PTS run: the search knobs of :class:`SearchSettings`, and the run's own options below.

    Each question is searched with the run's :meth:`search_settings` and a seed of its own, derived from the
    run's ``seed`` and the question id (``pts.runner.question_search.question_seed``).
    """

    seed: int = field(default=42, metadata={"help": "The run's seed: each question's samples and search are "
                                                    "seeded from it and the question id."})

    # Sampling (the model and max_new_tokens, the cap on each response and rollout, are GeneratorArguments').
    temperature: float = field(
        default=1.0, metadata={"help": "Keep 1.0: the search's token log-probs are at temperature 1."})
    top_p: float = field(default=1.0, metadata={"help": "Keep 1.0, for the same reason as temperature."})

    # Questions.
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

    # Output and work split.
    plot_max: int = field(default=8, metadata={"help": "Plots of p along a searched response; 0 for none."})

    def __post_init__(self) -> None:
        source = self.check_producer_keys(REQUIRED_KEYS)
        if self.oracle not in ORACLE_KINDS:
            raise RecipeError(f"{source}: oracle '{self.oracle}' is not one of {ORACLE_KINDS}")
        if self.responses_per_question < 1:
            raise RecipeError(f"{source}: responses_per_question must be >= 1")
        if self.max_questions is not None and self.max_questions < 1:
            raise RecipeError(f"{source}: max_questions must be >= 1")
        if self.backend == "openai" and (self.backend_kwargs or {}).get("server_extensions", True) is not True:
            # The search cuts responses at token positions and DPO trains on the exact ids, so text re-tokenised
            # on this side would move pivots; only a server that returns the sampled ids (vLLM) can run PTS.
            raise RecipeError(f"{source}: PTS through backend openai needs the sampled token ids (vLLM's "
                              "return_token_ids): key 'backend_kwargs.server_extensions' must be true; an API that "
                              "returns text only cannot run PTS")
        try:
            super().__post_init__()
        except ValueError as err:
            raise RecipeError(f"{source}: {err}") from err

    def result_settings(self) -> dict[str, Any]:
        """The options that change what a question's record holds; a resumed run must not change them.

        Not included: where and how the work runs (backend, shards, output, plots, max_questions).
        """
        names = ("model_name_or_path", "tokenizer_name_or_path", "system_prompt", "max_new_tokens", "temperature",
                 "top_p", "question_field", "answer_field", "oracle", "oracle_field", "oracle_options",
                 "responses_per_question", "search_all_responses", "seed")
        knobs = {f.name for f in fields(SearchSettings)}
        return {name: getattr(self, name) for name in (*names, *sorted(knobs))}
