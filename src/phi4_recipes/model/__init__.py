"""Phi-4 model: config with presets, and a Phi-3-compatible causal LM with optional Liger kernels."""

from .configuration_phi4 import Phi4Config
from .modeling_phi4 import Phi4ForCausalLM, Phi4Model, Phi4PreTrainedModel
from .presets import PRESETS

__all__ = ["PRESETS", "Phi4Config", "Phi4ForCausalLM", "Phi4Model", "Phi4PreTrainedModel", "count_parameters"]


def count_parameters(model) -> int:
    """Number of parameters, counting meta-device tensors too (for sizing presets without memory)."""
    return sum(p.numel() for p in model.parameters())
