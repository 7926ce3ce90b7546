"""Liger Triton kernels for Phi-4, used only where they can run.

modeling_phi4.liger_active(use_liger, tensor) decides at forward time; this module is imported only then.
"""

from __future__ import annotations

import torch


def rms_norm(hidden_states: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    from liger_kernel.ops.rms_norm import LigerRMSNormFunction

    # "llama" casting: normalise in fp32, cast back, then scale, the same order as the torch path.
    return LigerRMSNormFunction.apply(hidden_states, weight, eps, 0.0, "llama", False)


def rotary_pos_emb(q, k, cos, sin):
    from liger_kernel.transformers.rope import liger_rotary_pos_emb

    return liger_rotary_pos_emb(q, k, cos, sin)


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    from liger_kernel.ops.swiglu import LigerSiLUMulFunction

    return LigerSiLUMulFunction.apply(gate, up)


def fused_linear_cross_entropy(hidden_states, lm_head_weight, labels, hidden_size, num_items_in_batch=None):
    """Shifted next-token loss from hidden states (B, T, H) without building (B, T, V) logits."""
    from liger_kernel.transformers.model.loss_utils import LigerForCausalLMLoss

    return LigerForCausalLMLoss(
        hidden_states=hidden_states,
        lm_head_weight=lm_head_weight,
        labels=labels,
        hidden_size=hidden_size,
        num_items_in_batch=num_items_in_batch,
    )
