"""Options of ``run_judge.py``: which prompts, which responders, how pairs are formed and judged, where shards go.

    python src/phi4_recipes/run_judge.py recipes/tiny/judge.yaml --max_prompts 8
    python src/phi4_recipes/run_judge.py --config recipes/judge.yaml --executor slurm --tasks 8
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from phi4_recipes.producers.options import ProducerArguments
from phi4_recipes.recipe_checks import RecipeError
from phi4_recipes.verify import ORACLE_KINDS

from .pairing import PAIRING_STRATEGIES
from .responders import ResponderSpec, parse_responders


@dataclass
class JudgeScriptArguments(ProducerArguments):
    """One judge-guided preference run (Phi-4 DPO round 2)."""

    # Prompts.
    question_field: str = field(default="question", metadata={"help": "Column with the prompt text."})
    messages_field: str = field(
        default="messages", metadata={"help": "Column with a conversation (wins over question_field; a trailing "
                                              "assistant turn is dropped)."})
    answer_field: str | None = field(
        default="answer", metadata={"help": "Column with the reference (answer, choice letter, code tests); rows "
                                            "with one are decided by the oracle, not the judge."})
    oracle: str | None = field(
        default=None, metadata={"help": f"Oracle kind for rows with a reference ({', '.join(ORACLE_KINDS)}); null: "
                                        "judge every row."})
    oracle_field: str | None = field(default=None, metadata={"help": "Column with each row's oracle kind."})
    oracle_options: dict[str, Any] | None = field(
        default=None, metadata={"help": "Per oracle kind, options of verify.make_oracle, e.g. {code: {timeout: 5}}."})
    category_field: str = field(default="category", metadata={"help": "Column with 'general' or 'rai'."})
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N rows (before sharding)."})
    include_rai_prompts: bool = field(
        default=True, metadata={"help": "Add the built-in safety/RAI prompts (judged with the RAI rubric)."})

    # Responders and pairing.
    responders: dict[str, Any] | None = field(
        default=None, metadata={"help": "name -> {model, backend, tokenizer, backend_kwargs, samples, temperature, "
                                        "top_p, max_new_tokens, system_prompt}; at least two."})
    pairing: str = field(
        default="all_pairs", metadata={"help": f"One of {', '.join(PAIRING_STRATEGIES)} (all_pairs matches the "
                                               "report; see judge/pairing.py)."})
    policy_responder: str | None = field(
        default=None, metadata={"help": "The responder that is the model being trained (policy_vs_others)."})

    # The judge.
    judge_model: str | None = field(default=None, metadata={"help": "The judge endpoint's model id. Required."})
    judge_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible /v1 URL. Required."})
    judge_api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "Env variable holding the key."})
    judge_max_new_tokens: int = field(default=1024, metadata={"help": "Cap on each judge reply."})
    judge_retry: dict[str, Any] | None = field(
        default=None, metadata={"help": "generation.RetryPolicy fields: max_retries, backoff_base_s, backoff_max_s, "
                                        "timeout_s (429/5xx/time-outs are retried with backoff)."})
    rubric: str = field(default="pairwise_v1", metadata={"help": "Rubric for general prompts (judge/prompts/)."})
    rai_rubric: str = field(default="pairwise_rai_v1", metadata={"help": "Refusal-aware rubric for RAI prompts."})
    max_concurrency: int = field(default=16, metadata={"help": "Judge requests in flight at once."})

    # Work, output.
    prompts_per_batch: int = field(
        default=16, metadata={"help": "Prompts each responder answers in one call; the unit a killed run redoes."})
    length_balance: bool = field(
        default=False, metadata={"help": "Drop pairs until chosen is longer as often as shorter (length bias)."})
    seed: int = field(default=42, metadata={"help": "Seeds every responder call and judge request."})


    def __post_init__(self) -> None:
        source = self.check_producer_keys(("judge_model", "judge_base_url", "output_dir"))
        if not self.dataset_name and not self.include_rai_prompts:
            raise RecipeError(f"{source}: no prompts: set dataset_name or include_rai_prompts")
        self.responder_specs: list[ResponderSpec] = parse_responders(self.responders, source)
        engines = [int(s.backend_kwargs.get("tensor_parallel_size", 1)) for s in self.responder_specs
                   if s.backend == "vllm"]
        if engines:  # in-process vLLM responders share the task's GPUs, each sharded over up to all of them
            self.check_vllm_gpus(source, max(engines))
        names = [s.name for s in self.responder_specs]
        if self.pairing not in PAIRING_STRATEGIES:
            raise RecipeError(f"{source}: pairing '{self.pairing}' is not one of {PAIRING_STRATEGIES}")
        if self.pairing == "policy_vs_others" and self.policy_responder not in names:
            raise RecipeError(f"{source}: pairing policy_vs_others needs policy_responder, one of {names}")
        if self.oracle is not None and self.oracle not in ORACLE_KINDS:
            raise RecipeError(f"{source}: oracle '{self.oracle}' is not one of {ORACLE_KINDS}")
        if self.max_concurrency < 1 or self.prompts_per_batch < 1:
            raise RecipeError(f"{source}: max_concurrency and prompts_per_batch must be >= 1")

    def record_settings(self) -> dict[str, Any]:
        """What decides a prompt's record; a resumed run must not change it (JSON-normalised, as stored)."""
        settings = {"responders": {s.name: s.settings() for s in self.responder_specs}, "pairing": self.pairing,
                    "policy_responder": self.policy_responder, "judge_model": self.judge_model,
                    "rubric": self.rubric, "rai_rubric": self.rai_rubric, "oracle_options": self.oracle_options,
                    "prompts_per_batch": self.prompts_per_batch, "seed": self.seed}
        return json.loads(json.dumps(settings))
