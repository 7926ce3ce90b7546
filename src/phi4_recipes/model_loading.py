"""Tokenizer and model loading shared by the stage scripts.

A model source is a preset name (fresh weights), a local folder or a Hub id; the loading code is the same
for the last two (`from_pretrained`), tests use local folders. Phi-3/Phi-4 checkpoints load as our
Phi4ForCausalLM (its own Liger kernels); any other causal LM (Llama, Qwen, Mistral, SmolLM) loads with
AutoModelForCausalLM in its own layout, with its own tokenizer and chat template unless the recipe says
`chat_template: phi4`, and Liger through `liger_kernel.transformers` where Liger supports the architecture.
"""

from __future__ import annotations

import functools
import logging
import types
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .model import PRESETS, Phi4Config, Phi4ForCausalLM
from .model.modeling_phi4 import MAX_SHARD_SIZE
from .tokenizer import (
    build_phi4_tokenizer,
    has_phi4_chat_tokens,
    load_chat_template,
    stop_token_ids,
    train_tiny_tokenizer,
    use_phi4_chat_template,
)

# Checkpoints in the Phi-3 layout (microsoft/phi-4 ships model_type "phi3"), which Phi4ForCausalLM loads.
PHI_MODEL_TYPES = ("phi3", "phi4")
CHAT_TEMPLATES = ("phi4",)

logger = logging.getLogger(__name__)


def is_preset(name_or_path: str) -> bool:
    return name_or_path in PRESETS and not Path(name_or_path).exists()


@functools.cache
def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """The built-in tiny tokenizer, trained on the tiny corpus (deterministic)."""
    from .data.tiny import tokenizer_corpus

    return train_tiny_tokenizer(tokenizer_corpus(), vocab_size=PRESETS["tiny"]["vocab_size"])


def model_type(name_or_path: str, revision: str | None = None) -> str:
    """The `model_type` of a preset ("phi3", our layout), a folder or a Hub id (read from its config)."""
    if is_preset(name_or_path):
        return Phi4Config.model_type
    require_checkpoint_folder(name_or_path, ("config.json",), "model")
    return AutoConfig.from_pretrained(name_or_path, revision=revision).model_type


def is_phi_model(name_or_path: str, revision: str | None = None) -> bool:
    return model_type(name_or_path, revision) in PHI_MODEL_TYPES


def get_tokenizer(tokenizer_name_or_path: str | None, model_name_or_path: str,
                  chat_template: str | None = None) -> PreTrainedTokenizerBase:
    """The run's tokenizer, with its own chat template; `chat_template="phi4"` swaps in Phi-4's (adding the
    ChatML specials a non-Phi tokenizer lacks). A tokenizer without a template gets Phi-4's only when it has
    Phi-4's chat tokens; any other fails here rather than rendering conversations as plain text."""
    if chat_template not in (None, *CHAT_TEMPLATES):
        raise ValueError(f"chat_template {chat_template!r}: expected one of {list(CHAT_TEMPLATES)} or unset "
                         "(the tokenizer's own)")
    name = tokenizer_name_or_path or model_name_or_path
    if name == "tiny":
        tokenizer = tiny_tokenizer()
    elif name == "phi4" or is_preset(name):
        tokenizer = build_phi4_tokenizer()
    else:
        require_checkpoint_folder(name, ("tokenizer.json", "tokenizer_config.json"), "tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(name)
    if chat_template == "phi4":
        use_phi4_chat_template(tokenizer)
    elif tokenizer.chat_template is None:
        if not has_phi4_chat_tokens(tokenizer):
            raise ValueError(f"tokenizer {name} has no chat template and no Phi-4 chat tokens: set "
                             "`chat_template: phi4` in the recipe (adds them) or use a tokenizer with a template")
        tokenizer.chat_template = load_chat_template()
    return tokenizer


def require_checkpoint_folder(name: str, markers: tuple[str, ...], what: str) -> None:
    """A local folder without the files a checkpoint has fails naming the folder, not a missing-backend hint."""
    folder = Path(name)
    if folder.is_dir() and not any((folder / marker).is_file() for marker in markers):
        raise ValueError(f"{folder} is not a checkpoint folder: no {' or '.join(markers)} for the {what} "
                         f"(it holds {sorted(p.name for p in folder.iterdir())[:8]})")


def require_whole_weights(folder: str | Path) -> None:
    """Every ``*.safetensors`` file in ``folder`` opens, or the error names the file: safetensors reports a copy
    cut short, or a save killed part-way, as a bare "incomplete metadata, file not fully covered"."""
    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):  # reads the header only and checks it against the size
                pass
        except (OSError, SafetensorError) as err:
            raise ValueError(f"{file} is truncated or corrupt ({err}): copy or save the checkpoint again") from err


def _config_overrides(overrides: dict | None) -> dict:
    overrides = dict(overrides or {})
    if "rope_theta" in overrides:  # recipes speak of the RoPE base; configs keep it in rope_parameters
        overrides["rope_parameters"] = {
            "rope_type": "default", "rope_theta": float(overrides.pop("rope_theta")), "partial_rotary_factor": 1.0
        }
    return overrides


def get_model(model_args, tokenizer, *, use_liger: bool = True, config_overrides: dict | None = None,
              gradient_checkpointing: bool = False) -> PreTrainedModel:
    """A Phi4ForCausalLM from a preset (fresh init, seeded by the caller) or a Phi-3/Phi-4 checkpoint; any other
    causal LM checkpoint with AutoModelForCausalLM, in its own architecture."""
    name = model_args.model_name_or_path
    if not name:
        raise ValueError("model_name_or_path is required (a preset, a folder or a Hub id)")
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    overrides = _config_overrides(config_overrides)
    if is_preset(name):
        config = Phi4Config.from_preset(name, **overrides, use_liger=use_liger)
        if model_args.attn_implementation:
            config._attn_implementation = model_args.attn_implementation
        model = Phi4ForCausalLM(config)
        if dtype not in (None, "auto"):
            model = model.to(dtype)
    else:
        # A local folder loads by its absolute path, which the model keeps as `name_or_path`: a PEFT adapter
        # records that as its base, and a relative one would not open from another working directory.
        name = str(Path(name).resolve()) if Path(name).is_dir() else name
        # Phi-3/Phi-4 folders load into our class (Liger on CUDA); any other causal LM in its own layout.
        phi = is_phi_model(name, model_args.model_revision)
        if Path(name).is_dir():
            require_whole_weights(name)
        config_class, model_class = (Phi4Config, Phi4ForCausalLM) if phi else (AutoConfig, AutoModelForCausalLM)
        extra = {"use_liger": use_liger} if phi else {}
        config = config_class.from_pretrained(name, revision=model_args.model_revision, **overrides, **extra)
        model = model_class.from_pretrained(name, config=config, revision=model_args.model_revision,
                                            dtype=dtype if dtype is not None else "auto",
                                            attn_implementation=model_args.attn_implementation)
    if not isinstance(model, Phi4ForCausalLM):
        if len(tokenizer) > model.config.vocab_size:  # `chat_template: phi4` added the ChatML specials
            logger.info("growing %s's embeddings from %d to %d for the added chat tokens", name,
                        model.config.vocab_size, len(tokenizer))
            model.resize_token_embeddings(len(tokenizer))
        apply_liger(model, use_liger)
        save_in_shards(model)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}")
    configure_generation(model, tokenizer)
    if gradient_checkpointing:
        model.config.use_cache = False
    return model


def _save_pretrained_in_shards(self, save_directory, *args, max_shard_size: int | str = MAX_SHARD_SIZE, **kwargs):
    return type(self).save_pretrained(self, save_directory, *args, max_shard_size=max_shard_size, **kwargs)


def save_in_shards(model: PreTrainedModel) -> PreTrainedModel:
    """Give a non-Phi model Phi4ForCausalLM's save default, MAX_SHARD_SIZE shards (transformers' is one 50 GB file),
    for every later save of this instance: the Trainer's checkpoints and final save (which call
    `model.save_pretrained` after gathering DeepSpeed/FSDP weights, with no shard option) and push_to_hub.
    Bound to the instance, so a deepcopy (DPO's reference model) saves itself."""
    model.save_pretrained = types.MethodType(_save_pretrained_in_shards, model)
    return model


def liger_supported_model_types() -> frozenset[str]:
    """Architectures `liger_kernel.transformers` can patch (empty when Liger is not installed)."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        return frozenset()
    return frozenset(MODEL_TYPE_TO_APPLY_LIGER_FN)


def liger_choice(model_type_name: str, *, use_liger: bool, cuda: bool, supported: frozenset[str]) -> tuple[bool, str]:
    """Whether to patch a non-Phi model with Liger, and why (logged): only on CUDA, for a supported type."""
    if not use_liger:
        return False, "off in the recipe"
    if not cuda:
        return False, "no CUDA device (Liger's Triton kernels are GPU only); the plain transformers path runs"
    if model_type_name not in supported:
        return False, (f"liger_kernel.transformers does not support model_type {model_type_name!r}" if supported
                       else "liger-kernel is not installed (extra `gpu`)")
    return True, f"liger_kernel.transformers patches {model_type_name}"


def apply_liger(model, use_liger: bool) -> bool:
    """Patch `model` in place with Liger's kernels for its architecture when `liger_choice` allows it."""
    use, reason = liger_choice(model.config.model_type, use_liger=use_liger, cuda=torch.cuda.is_available(),
                               supported=liger_supported_model_types() if use_liger else frozenset())
    logger.info("Liger for %s: %s", model.config.model_type, reason)
    if use:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        _apply_liger_kernel_to_instance(model=model)
    return use


def load_training_model(model_args, tokenizer, script_args, training_args, *, use_liger: bool) -> PreTrainedModel:
    """`get_model` with a training recipe's loading options (Liger, as `training.start_run` planned it; config
    overrides; checkpointing)."""
    return get_model(model_args, tokenizer, use_liger=use_liger,
                     config_overrides=script_args.model_config_overrides,
                     gradient_checkpointing=training_args.gradient_checkpointing)


def configure_generation(model, tokenizer) -> None:
    """Generation stops where `tokenizer.stop_token_ids` says a reply ends; its first id, the chat template's
    end-of-turn token, is the model's eos."""
    stop_ids = stop_token_ids(tokenizer)
    model.generation_config.eos_token_id = stop_ids
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = stop_ids[0]
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
