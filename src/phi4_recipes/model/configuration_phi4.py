"""Phi-4 configuration.

Phi-4 is published with `model_type: "phi3"` and `architectures: ["Phi3ForCausalLM"]`; we keep both so a
checkpoint we save opens in plain transformers (`AutoModelForCausalLM`) and vLLM without remote code, and a
`microsoft/phi-4` folder loads into `Phi4ForCausalLM` unchanged. The only key we add, `use_liger`, is
ignored by `Phi3Config`.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import Phi3Config

from .presets import PRESETS


@strict
class Phi4Config(Phi3Config):
    r"""
    use_liger (`bool`, *optional*, defaults to `True`):
        Use Liger Triton kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy) when the inputs live on a
        CUDA device and `liger-kernel` is installed. Elsewhere the plain torch path runs; the math is the same.
    """

    use_liger: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Phi-4 attends over the full context; Phi-3's long-rope and sliding window are not part of it.
        # A window at least as long as the context is full attention (some Phi-3-family configs carry one).
        if self.sliding_window is not None and self.sliding_window < self.max_position_embeddings:
            raise ValueError(f"Phi4Config: Phi-4 uses full attention, but sliding_window={self.sliding_window} "
                             f"< max_position_embeddings={self.max_position_embeddings}")
        rope_type = self.rope_parameters.get("rope_type", "default")
        if rope_type != "default":
            raise ValueError(f"Phi4Config: only the default RoPE is used by Phi-4, got rope_type={rope_type!r}")

    def to_dict(self) -> dict:
        """Serialise as the Phi-3 architecture, whatever path writes config.json (save_pretrained, push_to_hub,
        a Trainer checkpoint), so plain transformers and vLLM load our checkpoints without remote code."""
        output = super().to_dict()
        if output.get("architectures"):
            output["architectures"] = [name.replace("Phi4", "Phi3") for name in output["architectures"]]
        # transformers 4.x (and the vLLM releases pinned to it) read the RoPE base from top-level `rope_theta`
        # and would silently fall back to 10,000 without it; these keys follow microsoft/phi-4's config.json.
        rope = output.get("rope_parameters") or {}
        output["rope_theta"] = rope.get("rope_theta")
        output["partial_rotary_factor"] = rope.get("partial_rotary_factor", 1.0)
        output["rope_scaling"] = None
        output["sliding_window"] = self.sliding_window
        return output

    @property
    def rope_theta(self) -> float:
        return self.rope_parameters["rope_theta"]

    @classmethod
    def from_preset(cls, name: str, **overrides) -> Phi4Config:
        """Build a config from a named preset (`phi4-14b`, `phi4-14b-16k`, `phi4-colab`, `phi4-1b`, `tiny`).

        `overrides` replace preset fields, e.g. `vocab_size=` for a tiny tokenizer of another size.
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
        fields = {**PRESETS[name], **overrides}
        rope_theta = fields.pop("rope_theta")
        rope = {"rope_type": "default", "rope_theta": float(rope_theta), "partial_rotary_factor": 1.0}
        return cls(rope_parameters=rope, **fields)
