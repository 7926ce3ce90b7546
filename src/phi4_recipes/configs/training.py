"""Options of the training scripts (run_pretrain, run_sft, run_dpo) beside TRL's own configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from trl import ScriptArguments as TrlScriptArguments

Stage = Literal["pretrain", "midtrain", "sft", "dpo_pts", "dpo_judge"]
STAGES: tuple[str, ...] = get_args(Stage)


@dataclass
class ScriptArguments(TrlScriptArguments):
    """Options shared by run_pretrain / run_sft / run_dpo, beside TRL's dataset_* fields."""

    stage: Stage = field(default="sft", metadata={"help": "Recipe stage (names the checkpoint in its card and manifest)."})
    dataset_mixture: str | None = field(
        default=None, metadata={"help": "YAML file of a token-budgeted data mixture (pretrain and midtrain)."}
    )
    mixture_phase: str | None = field(
        default=None, metadata={"help": "Phase of the mixture to build, e.g. pretrain or midtrain."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "'phi4' (cl100k + Phi-4 specials), 'tiny' (built-in tiny BPE), a folder or a Hub id. "
                  "Defaults to the model's own tokenizer."},
    )
    model_config_overrides: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Config fields to change when loading, e.g. {rope_theta: 250000, "
                  "max_position_embeddings: 16384} for midtraining."},
    )
    use_liger: bool = field(default=True, metadata={"help": "Liger kernels in Phi4ForCausalLM (CUDA only)."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished run in output_dir (otherwise refused unless resuming)."})
    dataset_max_rows: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows of the training set (quick runs)."}
    )
