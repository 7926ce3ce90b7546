"""Tokenizer and model loading shared by the stage scripts.

A model source is a preset name (fresh weights), a local folder or a Hub id; the loading code is the same
for the last two (`from_pretrained`), tests use local folders.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .model import PRESETS, Phi4Config, Phi4ForCausalLM
from .tokenizer import build_phi4_tokenizer, load_chat_template, train_tiny_tokenizer

logger = logging.getLogger(__name__)


def is_preset(name_or_path: str) -> bool:
    return name_or_path in PRESETS and not Path(name_or_path).exists()


@functools.cache
def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The built-in tiny tokenizer, trained on the tiny corpus (deterministic)."""
    from .data.tiny import tokenizer_corpus

    return train_tiny_tokenizer(tokenizer_corpus(), vocab_size=PRESETS["tiny"]["vocab_size"])


def get_tokenizer(tokenizer_name_or_path: str | None, model_name_or_path: str) -> PreTrainedTokenizerBase:
    name = tokenizer_name_or_path or model_name_or_path
    if name == "tiny":
        return tiny_tokenizer()
    if name == "phi4" or is_preset(name):
        return build_phi4_tokenizer()
    require_checkpoint_folder(name, ("tokenizer.json", "tokenizer_config.json"), "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = load_chat_template()
    return tokenizer


def require_checkpoint_folder(name: str, markers: tuple[str, ...], what: str) -> None:
    """A local folder without the files a checkpoint has fails naming the folder, not a missing-backend hint."""
    folder = Path(name)
    if folder.is_dir() and not any((folder / marker).is_file() for marker in markers):
        raise ValueError(f"{folder} is not a checkpoint folder: no {' or '.join(markers)} for the {what} "
                         f"(it holds {sorted(p.name for p in folder.iterdir())[:8]})")


def _config_overrides(overrides: dict | None) -> dict:
    overrides = dict(overrides or {})
    if "rope_theta" in overrides:  # recipes speak of the RoPE base; configs keep it in rope_parameters
        overrides["rope_parameters"] = {
            "rope_type": "default", "rope_theta": float(overrides.pop("rope_theta")), "partial_rotary_factor": 1.0
        }
    return overrides


def get_model(model_args, tokenizer, *, use_liger: bool = True, config_overrides: dict | None = None,
              gradient_checkpointing: bool = False) -> Phi4ForCausalLM:
    """A Phi4ForCausalLM from a preset (fresh init, seeded by the caller) or from a checkpoint."""
    name = model_args.model_name_or_path
    if not name:
        raise ValueError("model_name_or_path is required (a preset, a folder or a Hub id)")
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    overrides = {**_config_overrides(config_overrides), "use_liger": use_liger}
    if is_preset(name):
        config = Phi4Config.from_preset(name, **overrides)
        if model_args.attn_implementation:
            config._attn_implementation = model_args.attn_implementation
        model = Phi4ForCausalLM(config)
        if dtype not in (None, "auto"):
            model = model.to(dtype)
    else:
        require_checkpoint_folder(name, ("config.json",), "model")
        config = Phi4Config.from_pretrained(name, revision=model_args.model_revision, **overrides)
        model = Phi4ForCausalLM.from_pretrained(
            name,
            config=config,
            revision=model_args.model_revision,
            dtype=dtype if dtype is not None else "auto",
            attn_implementation=model_args.attn_implementation,
        )
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}")
    configure_generation(model, tokenizer)
    if gradient_checkpointing:
        model.config.use_cache = False
    return model


def load_training_model(model_args, tokenizer, script_args, training_args) -> Phi4ForCausalLM:
    """`get_model` with a training recipe's loading options (Liger, config overrides, checkpointing)."""
    return get_model(model_args, tokenizer, use_liger=script_args.use_liger,
                     config_overrides=script_args.model_config_overrides,
                     gradient_checkpointing=training_args.gradient_checkpointing)


def configure_generation(model, tokenizer) -> None:
    """Generation stops at `<|im_end|>` (end of an assistant turn) or `<|endoftext|>`; pad is its own token."""
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config.eos_token_id = stop_ids
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = stop_ids[0]
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
