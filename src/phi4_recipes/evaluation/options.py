"""Options of run_eval.py: which model, which benchmarks, and how every benchmark is prompted and scored.

Evaluation has no TRL trainer, so this is a plain dataclass; ``parse_recipe(EvalArguments)`` reads it like
every other script's (``run_eval.py recipe.yaml --model_name_or_path X --limit 20``). Few-shot counts and
generation settings are not here: they are fixed per benchmark in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import yaml

from phi4_recipes.recipe_checks import RecipeError, RecipeSource

EvalBackend = Literal["hf", "vllm"]
EVAL_BACKENDS: tuple[str, ...] = get_args(EvalBackend)


@dataclass
class EvalArguments(RecipeSource):
    """One evaluation run (``recipes/eval/phi4.yaml``, ``recipes/tiny/eval.yaml``)."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint folder or Hub id to evaluate (usually given on the command line)."}
    )
    benchmarks: list[str] = field(default_factory=list, metadata={"help": "Benchmark names from the registry."})
    registry: str | None = field(
        default=None,
        metadata={"help": "Benchmark registry YAML. Default: the one shipped in the package (eval/benchmarks.yaml)."},
    )
    task_paths: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra lm-eval task folders, searched after the packaged ones (and may shadow them)."},
    )
    backend: EvalBackend = field(default="hf", metadata={"help": "lm-eval model: hf (transformers) or vllm."})
    device: str = field(default="auto", metadata={"help": "auto: cuda when available, else cpu (hf backend)."})
    dtype: str = field(default="auto", metadata={"help": "Weights dtype passed to lm-eval (auto, bfloat16, ...)."})
    batch_size: int = field(default=8, metadata={"help": "Batch size of the hf backend (vllm batches itself)."})
    model_args: dict[str, Any] | str | None = field(
        default_factory=dict,
        metadata={"help": "Extra arguments of lm-eval's model constructor, passed as is (YAML mapping or "
                  "'{key: value}' on the command line)."},
    )
    apply_chat_template: bool = field(default=True, metadata={"help": "Prompt through the model's chat template."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message of every prompt."})
    fewshot_as_multiturn: bool = field(
        default=True, metadata={"help": "Few-shot examples as chat turns (with the chat template only)."}
    )
    seed: int = field(default=1234, metadata={"help": "Seed of lm-eval, numpy, torch and few-shot sampling."})
    limit: int | None = field(
        default=None,
        metadata={"help": "First N documents of every benchmark (quick checks; scores are not comparable)."},
    )
    max_gen_toks: int | None = field(
        default=None, metadata={"help": "Cap on every benchmark's generation length (tiny runs)."}
    )
    bootstrap_iters: int = field(default=1000, metadata={"help": "Bootstrap resamples for stderr estimates."})
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where results go. Default: <model folder>/eval, or outputs/eval/<hub id> for Hub models."},
    )
    run_name: str | None = field(
        default=None, metadata={"help": "Result file name (<run_name>.json). Default: the recipe file's stem."}
    )
    judge_model: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible model that grades SimpleQA and ArenaHard."}
    )
    judge_base_url: str | None = field(default=None, metadata={"help": "The judge's /v1 endpoint."})
    judge_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Environment variable holding the judge's API key."}
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise RecipeError(f"{self.source}: no model given; pass --model_name_or_path <folder or Hub id>")
        if not self.benchmarks:
            raise RecipeError(f"{self.source}: key 'benchmarks' lists no benchmark")
        if self.limit is not None and self.limit < 1:
            raise RecipeError(f"{self.source}: limit must be >= 1, got {self.limit}")
        if self.max_gen_toks is not None and self.max_gen_toks < 1:
            raise RecipeError(f"{self.source}: max_gen_toks must be >= 1, got {self.max_gen_toks}")
        if isinstance(self.model_args, str) or self.model_args is None:  # given on the command line
            parsed = yaml.safe_load(self.model_args or "") or {}
            if not isinstance(parsed, dict):
                raise RecipeError(f"{self.source}: model_args must be a mapping, got {self.model_args!r}")
            self.model_args = parsed
