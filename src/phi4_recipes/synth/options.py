"""Options of ``run_synth.py``: which workflow, which model writes and judges, which rows go in, where shards go.

    python src/phi4_recipes/run_synth.py recipes/synth/plurality.yaml
    python src/phi4_recipes/run_synth.py recipes/synth/rewrite.yaml --executor slurm --tasks 8

The run's knobs are flat; each workflow's own knobs sit under ``workflow_options`` and are checked
against that workflow's dataclass below (an unknown key fails naming it and the recipe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from phi4_recipes.data.near_dedup import MinHashParams
from phi4_recipes.producers.options import ModelProducerArguments
from phi4_recipes.recipe_checks import RecipeError, from_mapping


@dataclass
class SeedCurationOptions:
    """Two-stage seed filter: an annotator scores whole pages, then the passages of the pages it kept."""

    text_field: str = field(default="text", metadata={"help": "Column with the page text (curate/ writes `text`)."})
    page_threshold: float = field(
        default=6.0, metadata={"help": "Keep a page when the mean of educational_value and reasoning_depth "
                                       "(0-10) reaches this."})
    passage_threshold: float = field(
        default=6.0, metadata={"help": "Keep a passage when the mean of factual and reasoning (0-10) reaches this."})
    passage_words: int = field(default=120, metadata={"help": "Target passage length; passages end on a sentence."})
    max_passages: int = field(default=16, metadata={"help": "Score at most this many passages per page."})
    max_page_chars: int = field(default=6000, metadata={"help": "The page annotator sees this many characters."})


@dataclass
class PluralityOptions:
    """k independent answers per question; the plurality answer becomes the pseudo-label."""

    question_field: str = field(default="question", metadata={"help": "Column with the question."})
    answer_field: str | None = field(
        default="answer", metadata={"help": "Column with the given answer, if any (compared with the majority)."})
    num_answers: int = field(default=5, metadata={"help": "k: answers sampled per question."})
    min_agreement: float = field(
        default=0.5, metadata={"help": "The plurality answer needs this share of the k answers (and no tie); "
                                       "otherwise the question is dropped as no_plurality."})
    drop_unanimous: bool = field(
        default=True, metadata={"help": "Drop questions whose k answers all agree (too easy): all_agree."})
    replace_answer: bool = field(
        default=False, metadata={"help": "Write the majority answer into `answer` where the given one is "
                                         "missing or disagrees with it (the report's use)."})

    def __post_init__(self) -> None:
        if self.num_answers < 2:
            raise ValueError("num_answers must be >= 2 for a vote")
        if not 0.0 < self.min_agreement <= 1.0:
            raise ValueError("min_agreement must be in (0, 1]")


@dataclass
class QAExtractionOptions:
    """Deduction chains in a passage -> question-answer pairs, each with its supporting span."""

    text_field: str = field(default="text", metadata={"help": "Column with the passage."})
    max_pairs: int = field(default=4, metadata={"help": "Most pairs asked for per passage."})
    max_passage_chars: int = field(default=4000, metadata={"help": "Longer passages are cut to this."})
    include_passage: bool = field(
        default=False, metadata={"help": "Put the passage before the question in the user turn (open-book)."})


@dataclass
class RewriteOptions:
    """Writer -> critic rubric -> revise, until the rubric passes or max_revisions is reached."""

    text_field: str = field(default="text", metadata={"help": "Column with the seed."})
    task_kind: str = field(
        default="an exercise with a worked solution",
        metadata={"help": "What the seed becomes: an exercise, a discussion, a structured reasoning task."})
    max_revisions: int = field(default=2, metadata={"help": "R: most revise rounds after the first draft."})
    pass_score: float = field(
        default=4.0, metadata={"help": "The rubric passes when accuracy, reasoning and clarity (1-5) all reach this."})
    critic_temperature: float = field(default=0.0, metadata={"help": "The critic's sampling temperature."})
    keep_unpassed: bool = field(
        default=False, metadata={"help": "Keep the last draft when the rubric never passed (else dropped)."})


@dataclass
class InstructionReversalOptions:
    """Code -> instruction -> regenerated code; the pair is kept only when the regeneration is faithful."""

    code_field: str = field(default="text", metadata={"help": "Column with the code snippet."})
    tests_field: str | None = field(
        default="tests", metadata={"help": "Column with assert tests (or stdin/stdout cases), if the data has them."})
    similarity_threshold: float = field(
        default=0.6, metadata={"help": "Without tests: keep when the token similarity of the original and the "
                                       "regenerated code reaches this (0-1)."})
    sandbox_timeout: float = field(default=5.0, metadata={"help": "Seconds per sandboxed test run."})


@dataclass
class ValidationOptions:
    """Code answers run with their tests in the sandbox; math answers go to the math oracle."""

    oracle: str = field(default="math", metadata={"help": "math or code, for rows without `oracle_field`."})
    oracle_field: str | None = field(default=None, metadata={"help": "Column naming each row's oracle."})
    question_field: str = field(default="question", metadata={"help": "Column with the question or task."})
    response_field: str | None = field(
        default=None, metadata={"help": "Column with the response; null reads the last assistant turn of `messages`."})
    answer_field: str = field(default="answer", metadata={"help": "Column with the math reference answer."})
    tests_field: str = field(default="tests", metadata={"help": "Column with the code tests."})
    generate_responses: bool = field(
        default=False, metadata={"help": "Ask the model for each row's response first, then validate it."})
    sandbox_timeout: float = field(default=5.0, metadata={"help": "Seconds per sandboxed test run."})

    def __post_init__(self) -> None:
        if self.oracle not in ("math", "code"):
            raise ValueError(f"oracle must be math or code, got {self.oracle!r}")


WORKFLOW_OPTIONS = {
    "seed_curation": SeedCurationOptions,
    "plurality": PluralityOptions,
    "qa_extraction": QAExtractionOptions,
    "rewrite": RewriteOptions,
    "instruction_reversal": InstructionReversalOptions,
    "validation": ValidationOptions,
}
WORKFLOWS = tuple(WORKFLOW_OPTIONS)


@dataclass
class SynthScriptArguments(ModelProducerArguments):
    """One synthetic-data run: a workflow over one dataset."""

    workflow: str | None = field(default=None, metadata={"help": f"One of {', '.join(WORKFLOWS)}. Required."})
    workflow_options: dict[str, Any] | None = field(
        default=None, metadata={"help": "The workflow's own knobs (see its options dataclass in synth/options.py)."})
    seed: int = field(default=42, metadata={"help": "Root of every row's sampling seed (per row id and step)."})

    # Model (GeneratorArguments'): writer, annotator and critic are the same model here.
    prompt_version: str = field(default="v1", metadata={"help": "Folder of synth/prompts/ the prompts come from."})
    temperature: float = field(default=0.8, metadata={"help": "Writer and answer sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus mass for sampling."})

    # Input rows.
    max_rows: int | None = field(default=None, metadata={"help": "Use only the first N rows (before sharding)."})

    # Output.
    output_format: str | None = field(
        default=None, metadata={"help": "`text` (pretraining) or `messages` (SFT) column in data.jsonl; "
                                        "null takes the workflow's default."})
    dedup: bool = field(default=True, metadata={"help": "Remove exact and near-duplicate outputs at export."})
    minhash_shingle_words: int = field(default=MinHashParams.shingle_words, metadata={"help": "Words per MinHash shingle."})
    minhash_bands: int = field(default=MinHashParams.bands, metadata={"help": "LSH bands."})
    minhash_rows: int = field(default=MinHashParams.rows, metadata={"help": "Rows per LSH band (bands x rows permutations)."})


    def __post_init__(self) -> None:
        source = self.check_producer_keys(("workflow", "dataset_name", "output_dir"))
        if self.workflow not in WORKFLOW_OPTIONS:
            raise RecipeError(f"{source}: workflow '{self.workflow}' is not one of {WORKFLOWS}")
        self.options = from_mapping(WORKFLOW_OPTIONS[self.workflow], self.workflow_options or {},
                                    f"{source}: workflow_options")
        if self.needs_model and not self.model_name_or_path:
            raise RecipeError(f"{source}: key 'model_name_or_path' is required for workflow '{self.workflow}'")
        if self.output_format not in (None, "text", "messages"):
            raise RecipeError(f"{source}: output_format must be text or messages, got {self.output_format!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise RecipeError(f"{source}: max_rows must be >= 1")

    @property
    def needs_model(self) -> bool:
        return self.workflow != "validation" or self.options.generate_responses

    def result_settings(self) -> dict[str, Any]:
        """What changes a row's result; a resumed run (or another task) must use the same."""
        names = ("workflow", "seed", "model_name_or_path", "system_prompt", "prompt_version", "max_new_tokens",
                 "temperature", "top_p", "id_field")
        return {**{name: getattr(self, name) for name in names}, "workflow_options": asdict(self.options)}
