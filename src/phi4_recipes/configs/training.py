"""Options of the training scripts (run_pretrain, run_sft, run_dpo) beside TRL's own configs.

The SFT and DPO recipes hold only keys TRL knows, so `trl sft|dpo --config recipe.yaml` runs them too: data
as TRL's `dataset_name` or `datasets:` mixture (DatasetMixtureConfig), Liger as transformers'
`use_liger_kernel`, the stage implied by the script. The keys below that TRL does not know (mixture,
tokenizer, config overrides) are for pretraining and midtraining, which only our run_pretrain.py runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from trl import DatasetMixtureConfig
from trl import ScriptArguments as TrlScriptArguments

Stage = Literal["pretrain", "midtrain", "sft", "dpo_pts", "dpo_judge"]
STAGES: tuple[str, ...] = get_args(Stage)


@dataclass
class ScriptArguments(TrlScriptArguments, DatasetMixtureConfig):
    """Options shared by run_pretrain / run_sft / run_dpo, beside TRL's dataset_* and `datasets:` fields."""

    stage: Stage | None = field(
        default=None,
        metadata={"help": "Recipe stage (names the checkpoint in its card and manifest). Default: sft for run_sft, "
                  "dpo_pts for run_dpo, the mixture phase for run_pretrain; set it for dpo_judge."})
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
    use_liger: bool | None = field(
        default=None,
        metadata={"help": "Deprecated: use `use_liger_kernel` (transformers' key, which our scripts hand to "
                  "Phi4ForCausalLM's own Liger kernels)."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished run in output_dir (otherwise refused unless resuming)."})
    dataset_max_rows: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows of the training set (quick runs)."}
    )

    def __post_init__(self):
        DatasetMixtureConfig.__post_init__(self)  # `datasets:` entries -> DatasetConfig
        if self.stage is None and self.mixture_phase in STAGES:
            self.stage = self.mixture_phase

    def resolve_stage(self, default: str) -> str:
        """The recipe's stage, or the script's own when the recipe leaves it out (as TRL-runnable recipes do)."""
        if self.stage is None:
            self.stage = default
        return self.stage
