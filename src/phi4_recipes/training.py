"""What every training stage does before and after `trainer.train()`: logging, resume, save, manifest,
model card and Hub push. Kept apart so each run_*.py reads top to bottom like a recipe."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import datasets
import transformers
from transformers.trainer_utils import get_last_checkpoint

from .hub import HubPushError, push_checkpoint, write_model_card
from .manifest import read_manifest, write_manifest
from .model_loading import configure_generation
from .tokenizer import EOS_TOKEN

logger = logging.getLogger("phi4_recipes")


def setup_logging(training_args) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[logging.StreamHandler(sys.stdout)])
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def resolve_resume(training_args) -> str | bool | None:
    """`resume_from_checkpoint: true` -> the newest checkpoint-* in output_dir; a path -> that path."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("false", "none", ""):
        return None
    if str(value).lower() == "true":
        last = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
        if last is None:
            raise FileNotFoundError(f"resume_from_checkpoint=true but {training_args.output_dir} has no checkpoint-*")
        logger.info("resuming from %s", last)
        return last
    if not Path(value).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint: {value} is not a checkpoint folder")
    return value


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
    configure_generation(trainer.accelerator.unwrap_model(trainer.model), tokenizer)
    trainer.save_model(output_dir)
    if not trainer.accelerator.is_main_process:
        return
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
