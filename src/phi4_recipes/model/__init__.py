"""Phi-4 model: config with presets, and a Phi-3-compatible causal LM with optional Liger kernels."""

from .configuration_phi4 import PRESETS, Phi4Config
from .modeling_phi4 import Phi4ForCausalLM, Phi4Model, Phi4PreTrainedModel, count_parameters

__all__ = ["PRESETS", "Phi4Config", "Phi4ForCausalLM", "Phi4Model", "Phi4PreTrainedModel", "count_parameters"]
