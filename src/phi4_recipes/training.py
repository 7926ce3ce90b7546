"""What every training stage does before and after `trainer.train()`: logging, inputs and data, resume, Liger
and chat-template hand-over, LoRA target check, save, manifest, model card and Hub push. Kept apart so each
run_*.py reads top to bottom like a recipe."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from torch.distributed.fsdp import FSDPModule
from transformers import set_seed

from .data.sources import check_jsonl_rows, fingerprint, first_rows, load_train_split
from .hub import HubPushError, model_lineage, push_checkpoint, write_model_card
from .logs import get_logger
from .logs import setup_logging as setup_project_logging
from .manifest import read_manifest, write_manifest
from .model_loading import configure_generation, require_whole_weights
from .recipe_checks import require_local_input
from .tokenizer import (
    end_of_turn_token,
    load_chat_template,
    load_training_chat_template,
    make_tokenizer_config_portable,
)

logger = get_logger(__name__)


def setup_logging(training_args) -> None:
    """The project logger at the Trainer's log level (quiet on non-main ranks), and the same for HF libraries."""
    level = training_args.get_process_log_level()
    setup_project_logging(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def require_inputs(script_args, model_args) -> None:
    """Every path-like input exists, or the error names it, its key and the recipe that writes it."""
    recipe = getattr(script_args, "recipe_path", None)
    keys = [("model_name_or_path", model_args.model_name_or_path),
            ("tokenizer_name_or_path", script_args.tokenizer_name_or_path),
            ("dataset_name", script_args.dataset_name),
            ("dataset_mixture", script_args.dataset_mixture)]
    for index, entry in enumerate(getattr(script_args, "datasets", None) or []):
        keys += [(f"datasets[{index}].data_files", f) for f in _local_files(entry)]
    for key, value in keys:
        require_local_input(value, key, recipe)


def _local_files(entry) -> list[str]:
    """The file paths of one TRL `datasets:` entry (its data_files: one path or a list)."""
    files = entry.data_files if isinstance(entry.data_files, list) else [entry.data_files]
    return [f for f in files if isinstance(f, str)]


def _mixture_source(entry) -> str:
    files = entry.data_files
    return files if isinstance(files, str) else (files[0] if isinstance(files, list) and len(files) == 1
                                                  else entry.path)


def load_training_data(script_args) -> tuple[datasets.Dataset, list[dict]]:
    """The training split and its manifest fingerprints, from TRL's `datasets:` mixture (as `trl sft|dpo` reads
    it) or from `dataset_name`; `dataset_max_rows` applies to both."""
    if not script_args.datasets:
        dataset = load_train_split(script_args)
        inputs = [fingerprint(script_args.dataset_name, dataset)]
    else:
        from trl import get_dataset

        # datasets reads an empty JSON Lines file as a bare StopIteration (e.g. the pairs of a PTS run that found
        # no pivot): name the file first.
        for entry in script_args.datasets:
            for file in _local_files(entry):
                if file.endswith(".jsonl") and Path(file).is_file():
                    check_jsonl_rows(Path(file))
        dataset = first_rows(get_dataset(script_args)["train"], script_args.dataset_max_rows)
        inputs = [fingerprint(_mixture_source(entry), dataset) for entry in script_args.datasets]
    return dataset, inputs


def dpo_round(dataset: datasets.Dataset) -> str:
    """The DPO stage a set of pairs trains, for a recipe that leaves `stage` out (as TRL-runnable recipes do):
    run_judge's pairs carry the judge's provenance (round 2), anything else is round 1."""
    return "dpo_judge" if "judge_model" in dataset.column_names else "dpo_pts"


def use_training_chat_template(tokenizer, training_args) -> None:
    """Assistant-only loss needs `{% generation %}` markers: swap in the training template (finish() restores
    the plain one), unless the recipe names its own with `chat_template_path` (SFTTrainer loads that)."""
    if training_args.assistant_only_loss and not training_args.chat_template_path \
            and tokenizer.chat_template == load_chat_template():
        tokenizer.chat_template = load_training_chat_template()


# LoRA targets are module-name suffixes; Llama's (q_proj, k_proj, v_proj, gate_proj, up_proj) do not exist in the
# fused Phi-3/Phi-4 layout, where only o_proj and down_proj would match.
FUSED_LORA_TARGETS = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
MIN_LORA_SHARE = 0.2  # below this share of the decoder's linear weights, the adapters barely touch the model


def check_lora_targets(model, model_args) -> dict[str, int]:
    """Warn when `lora_target_modules` miss the model (names that match no module, or most linear weights left
    out); returns {target: matched modules}. `all-linear` and no PEFT are not checked."""
    targets = model_args.lora_target_modules
    if not model_args.use_peft or targets is None or targets == "all-linear":
        return {}
    targets = [targets] if isinstance(targets, str) else list(targets)
    linear = {name: module.weight.numel() for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and name.split(".")[-1] != "lm_head"}
    matched = {t: [n for n in linear if n == t or n.endswith("." + t)] for t in targets}
    share = sum(linear[n] for n in {n for names in matched.values() for n in names}) / max(1, sum(linear.values()))
    missing = [t for t, names in matched.items() if not names]
    if missing or share < MIN_LORA_SHARE:
        logger.warning(
            "lora_target_modules %s: %s; the adapters cover %.1f%% of the linear weights. Phi-3/Phi-4 fuse the "
            "projections: use %s", targets, f"{missing} match no module" if missing else "they match few modules",
            100 * share, FUSED_LORA_TARGETS)
    return {t: len(names) for t, names in matched.items()}


# What `accelerate launch` asked for (through the environment it sets) and the distributed type it must produce.
_REQUESTED_DISTRIBUTION = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DEEPSPEED"}


def require_requested_distribution(distributed_type, environ=None) -> None:
    """Fail when `accelerate launch` asked for FSDP or DeepSpeed and the Accelerator set up something else.

    accelerate 1.16 drops both without a word on the CPU (its AcceleratorState turns only accelerator-device
    types such as MULTI_GPU into FSDP, and skips DeepSpeed under `cpu`): every rank would then train a full
    replica under DDP while the config says sharded.
    """
    environ = os.environ if environ is None else environ
    actual = getattr(distributed_type, "name", str(distributed_type))
    for key, wanted in _REQUESTED_DISTRIBUTION.items():
        if environ.get(key, "").lower() == "true" and actual != wanted:
            raise RuntimeError(
                f"the accelerate config asks for {wanted} ({key}=true) but accelerate set up {actual}: it builds "
                f"{wanted} only on GPUs (and other accelerator devices), never on the CPU. Launch on GPUs, or use "
                "recipes/accelerate_configs/ddp.yaml")


def distribution(accelerator, model) -> dict[str, Any]:
    """How the run was spread over processes, for the manifest: world size, accelerate's distributed type and,
    under FSDP2, the module classes that got their own shard group (what the wrap policy chose for this model)."""
    # fully_shard swaps a module's class for FSDP<Class>(FSDPModule, Class): report the model's own class.
    units = {next(c for c in type(m).__mro__ if not issubclass(c, FSDPModule)).__name__
             for m in model.modules() if isinstance(m, FSDPModule)}
    return {"world_size": accelerator.num_processes, "distributed_type": accelerator.distributed_type.name,
            "fsdp_units": sorted(units)}


def _incomplete_checkpoint(folder: Path) -> str | None:
    """Why ``folder`` is not a checkpoint the Trainer finished writing (no state file, no weights, a weights file
    that does not open, named), or None when it is one."""
    if not (folder / "trainer_state.json").is_file():
        return f"{folder} has no trainer_state.json"
    if not any(folder.glob("*.safetensors")):
        return f"{folder} has no *.safetensors weights"
    try:
        require_whole_weights(folder)
    except ValueError as err:
        return str(err)
    return None


def newest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The highest-step ``checkpoint-*`` that is whole; a torn one (killed mid-save) is skipped and named."""
    folder = Path(output_dir)
    candidates = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                        key=lambda p: int(p.name.split("-")[-1]), reverse=True) if folder.is_dir() else []
    for candidate in candidates:
        reason = _incomplete_checkpoint(candidate)
        if reason is None:
            return str(candidate)
        logger.warning("skipping %s: it was not completely written (killed mid-save?): %s", candidate, reason)
    return None


def resolve_resume(training_args, overwrite_output_dir: bool = False) -> str | None:
    """`resume_from_checkpoint: true` -> the newest complete checkpoint-* in output_dir; a path -> that path.

    Without resume, a folder that already holds a trained model or checkpoints is refused unless the recipe
    sets `overwrite_output_dir: true`, so a rerun never silently replaces an earlier run's weights.
    """
    value = training_args.resume_from_checkpoint
    output_dir = Path(training_args.output_dir)
    if value is None or str(value).lower() in ("false", "none", ""):
        earlier = [p.name for p in (output_dir.iterdir() if output_dir.is_dir() else [])
                   if p.name in ("model.safetensors", "model.safetensors.index.json") or p.name.startswith("checkpoint-")]
        if earlier and not overwrite_output_dir:
            raise FileExistsError(
                f"output_dir {output_dir} already holds a run ({', '.join(sorted(earlier)[:3])}); pass "
                "--resume_from_checkpoint true to continue it, --overwrite_output_dir true to replace it, or "
                "choose another output_dir")
        return None
    if str(value).lower() == "true":
        last = newest_complete_checkpoint(output_dir)
        if last is None:
            raise FileNotFoundError(f"resume_from_checkpoint=true but {output_dir} has no complete checkpoint-*")
        logger.info("resuming from %s", last)
        return last
    reason = _incomplete_checkpoint(Path(value))
    if reason is not None:
        raise FileNotFoundError(f"resume_from_checkpoint: {value} is not a complete checkpoint folder: {reason}")
    return value


@dataclass(frozen=True)
class RunPlan:
    """A training run as the recipe asked for it, and how this script carries it out. The recipe's own config
    objects are never edited: the Trainer gets `trainer_args(training_args)`, a copy with `trainer_changes`.

    Two options are carried out by us, not by the Trainer, which is handed them switched off:
    `use_liger_kernel` turns on Phi4ForCausalLM's own kernels (the Trainer's patch would replace our forward),
    and `push_to_hub` pushes in `finish`, after the local save (the Trainer would create the Hub repo at
    start-up, and fail offline before training). The manifest records `requested` and what was changed.

    Args:
        stage: the checkpoint's stage (card and manifest); None until a DPO run has read its pairs (`named`).
        requested: the training arguments as the recipe and command line gave them (`TrainingArguments.to_dict`).
        resume_from_checkpoint: the checkpoint to continue from, or None.
        use_liger: load the model with its Liger kernels (they run on CUDA only).
        push_to_hub: push the saved checkpoint to `hub_model_id` at the end.
        trainer_changes: option -> the value the Trainer is handed instead of the recipe's.
    """

    stage: str | None
    requested: dict[str, Any]
    resume_from_checkpoint: str | None
    use_liger: bool
    push_to_hub: bool
    trainer_changes: dict[str, Any] = field(default_factory=dict)

    def named(self, stage: str) -> RunPlan:
        """This plan with its stage: the recipe's when it names one, else `stage`."""
        return replace(self, stage=self.stage or stage)

    def handing(self, **changes: Any) -> RunPlan:
        """This plan with more options the Trainer is handed differently from the recipe."""
        return replace(self, trainer_changes={**self.trainer_changes, **changes})

    def trainer_args(self, training_args):
        """What the Trainer runs with: a copy of the recipe's training arguments with `trainer_changes`."""
        handed = copy.copy(training_args)
        for key, value in self.trainer_changes.items():
            setattr(handed, key, value)
        return handed

    def carried_out(self) -> dict[str, Any]:
        """For the manifest: what the Trainer was handed instead, and by whom each option is carried out."""
        return {"trainer_args_changed": dict(self.trainer_changes),
                "liger": "Phi4ForCausalLM's own kernels (CUDA only)" if self.use_liger else "off",
                "push_to_hub": "after the local save, by the script" if self.push_to_hub else "off",
                "resume_from_checkpoint": self.resume_from_checkpoint}


def start_run(script_args, training_args, model_args, *, stage: str | None) -> RunPlan:
    """What every training stage does first: seed, logging, inputs checked, resume resolved, the stage named
    (the recipe's, else the script's `stage`; None for DPO, which reads it off its pairs) and the options we carry
    out ourselves taken from the Trainer (see RunPlan)."""
    set_seed(training_args.seed)
    setup_logging(training_args)
    require_inputs(script_args, model_args)
    resume = resolve_resume(training_args, script_args.overwrite_output_dir)
    return RunPlan(stage=script_args.stage or stage, requested=training_args.to_dict(),
                   resume_from_checkpoint=resume, use_liger=bool(training_args.use_liger_kernel),
                   push_to_hub=bool(training_args.push_to_hub),
                   trainer_changes={"use_liger_kernel": False, "push_to_hub": False})


def finish(trainer, *, script_args, training_args, model_args, train_result, inputs: list[dict], plan: RunPlan,
           extra: dict | None = None, mixture_table: str | None = None) -> None:
    """Save the final model and tokenizer, then manifest and model card, then (optionally) push."""
    output_dir = training_args.output_dir
    metrics = dict(train_result.metrics)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    # Pretraining separates documents with <|endoftext|> (recipe `eos_token`), and TRL writes that into the
    # tokenizer and model config; every checkpoint leaves with its template's end-of-turn token as EOS
    # (<|im_end|> for Phi-4, the model's own for others) so later stages and generation stop at the end of a turn.
    tokenizer = trainer.processing_class
    tokenizer.eos_token = end_of_turn_token(tokenizer)
    # The {% generation %} template was for assistant masks only; jinja2/minijinja/llama.cpp fail on the tag,
    # so the checkpoint ships the plain Phi-4 template.
    if tokenizer.chat_template == load_training_chat_template():
        tokenizer.chat_template = load_chat_template()
    configure_generation(trainer.accelerator.unwrap_model(trainer.model), tokenizer)
    trainer.save_model(output_dir)  # Phi4ForCausalLM.save_pretrained writes 5 GB shards
    if not trainer.accelerator.is_main_process:
        return
    make_tokenizer_config_portable(output_dir)
    write_manifest(
        output_dir,
        stage=plan.stage,
        recipe_path=getattr(script_args, "recipe_path", None),
        configs={"script_args": script_args, "training_args": plan.requested, "model_args": model_args},
        seed=training_args.seed,
        inputs=inputs,
        extra={"run_plan": plan.carried_out(), "lineage": model_lineage(model_args.model_name_or_path),
               "train_metrics": metrics, "log_history": trainer.state.log_history,
               **distribution(trainer.accelerator, trainer.model), **(extra or {})},
    )
    manifest = read_manifest(output_dir)
    write_model_card(output_dir, manifest, base_model=model_args.model_name_or_path,
                     hub_model_id=training_args.hub_model_id, mixture=mixture_table)
    logger.info("saved %s checkpoint to %s", plan.stage, output_dir)
    if plan.push_to_hub:
        if not training_args.hub_model_id:
            raise HubPushError(f"push_to_hub is set but hub_model_id is not; the local checkpoint is kept at {output_dir}")
        url = push_checkpoint(output_dir, training_args.hub_model_id, token=training_args.hub_token,
                              private=training_args.hub_private_repo, revision=training_args.hub_revision)
        logger.info("pushed to %s", url)
