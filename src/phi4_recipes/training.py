"""What every training stage does before and after `trainer.train()`: logging, resume, save, manifest,
model card and Hub push. Kept apart so each run_*.py reads top to bottom like a recipe."""

from __future__ import annotations

from pathlib import Path

import datasets
import transformers
from safetensors import SafetensorError, safe_open
from transformers import set_seed

from . import io
from .hub import HubPushError, push_checkpoint, write_model_card
from .manifest import read_manifest, write_manifest
from .model_loading import configure_generation
from .schema import require_local_input
from .tokenizer import EOS_TOKEN, load_chat_template, load_training_chat_template, make_tokenizer_config_portable

logger = io.get_logger(__name__)


def setup_logging(training_args) -> None:
    """The project logger at the Trainer's log level (quiet on non-main ranks), and the same for HF libraries."""
    level = training_args.get_process_log_level()
    io.setup_logging(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def require_inputs(script_args, model_args) -> None:
    """Every path-like input exists, or the error names it, its key and the recipe that writes it."""
    recipe = getattr(script_args, "recipe_path", None)
    for key, value in (("model_name_or_path", model_args.model_name_or_path),
                       ("tokenizer_name_or_path", script_args.tokenizer_name_or_path),
                       ("dataset_name", script_args.dataset_name),
                       ("dataset_mixture", script_args.dataset_mixture)):
        require_local_input(value, key, recipe)


def _is_complete_checkpoint(folder: Path) -> bool:
    """A checkpoint the Trainer finished writing: its state file exists and every weights file opens."""
    weights = sorted(folder.glob("*.safetensors"))
    if not (folder / "trainer_state.json").is_file() or not weights:
        return False
    try:
        for file in weights:
            with safe_open(str(file), framework="pt"):
                pass
    except (OSError, SafetensorError):
        return False
    return True


def newest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The highest-step ``checkpoint-*`` that is whole; a torn one (killed mid-save) is skipped and named."""
    folder = Path(output_dir)
    candidates = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                        key=lambda p: int(p.name.split("-")[-1]), reverse=True) if folder.is_dir() else []
    for candidate in candidates:
        if _is_complete_checkpoint(candidate):
            return str(candidate)
        logger.warning("skipping %s: it was not completely written (killed mid-save?)", candidate)
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
    if not _is_complete_checkpoint(Path(value)):
        raise FileNotFoundError(f"resume_from_checkpoint: {value} is not a complete checkpoint folder")
    return value


def start_run(script_args, training_args, model_args) -> tuple[str | None, bool]:
    """What every training stage does first: seed, logging, inputs checked, resume resolved, Hub push deferred.

    Returns:
        tuple[str | None, bool]: the checkpoint to resume from (or None) and whether to push at the end.
    """
    set_seed(training_args.seed)
    setup_logging(training_args)
    require_inputs(script_args, model_args)
    resume = resolve_resume(training_args, script_args.overwrite_output_dir)
    return resume, take_over_hub_push(training_args)


def take_over_hub_push(training_args) -> bool:
    """The Trainer would create the Hub repo at start-up (and fail offline before training); we push at the
    end instead, after the local save."""
    push = bool(training_args.push_to_hub)
    training_args.push_to_hub = False
    return push


def finish(trainer, *, script_args, training_args, model_args, train_result, inputs: list[dict], push: bool,
           extra: dict | None = None, mixture_table: str | None = None) -> None:
    """Save the final model and tokenizer, then manifest and model card, then (optionally) push."""
    output_dir = training_args.output_dir
    metrics = dict(train_result.metrics)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    # Pretraining separates documents with <|endoftext|> (recipe `eos_token`), and TRL writes that into the
    # tokenizer and model config; every checkpoint leaves with the chat EOS <|im_end|> so later stages and
    # generation stop at the end of an assistant turn.
    tokenizer = trainer.processing_class
    tokenizer.eos_token = EOS_TOKEN
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
        stage=script_args.stage,
        recipe_path=getattr(script_args, "recipe_path", None),
        configs={"script_args": script_args, "training_args": training_args.to_dict(), "model_args": model_args},
        seed=training_args.seed,
        inputs=inputs,
        extra={"train_metrics": metrics, "log_history": trainer.state.log_history,
               "world_size": trainer.accelerator.num_processes, **(extra or {})},
    )
    manifest = read_manifest(output_dir)
    write_model_card(output_dir, manifest, base_model=model_args.model_name_or_path,
                     hub_model_id=training_args.hub_model_id, mixture=mixture_table)
    logger.info("saved %s checkpoint to %s", script_args.stage, output_dir)
    if push:
        if not training_args.hub_model_id:
            raise HubPushError(f"push_to_hub is set but hub_model_id is not; the local checkpoint is kept at {output_dir}")
        url = push_checkpoint(output_dir, training_args.hub_model_id, token=training_args.hub_token,
                              private=training_args.hub_private_repo, revision=training_args.hub_revision)
        logger.info("pushed to %s", url)
