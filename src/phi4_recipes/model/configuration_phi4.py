"""Phi-4 configuration.

Phi-4 is published with `model_type: "phi3"` and `architectures: ["Phi3ForCausalLM"]`; we keep both so a
checkpoint we save opens in plain transformers (`AutoModelForCausalLM`) and vLLM without remote code, and a
`microsoft/phi-4` folder loads into `Phi4ForCausalLM` unchanged. The only key we add, `use_liger`, is
ignored by `Phi3Config`.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import Phi3Config

# Named model sizes. Phi-4 numbers are from the technical report and the released checkpoint.
# Phi-4 special ids (see tokenizer.py): <|endoftext|> is BOS, <|im_end|> ends every assistant turn,
# <|dummy_85|> pads so that padding never looks like an end of turn.
_PHI4_TOKENS = {"vocab_size": 100_352, "bos_token_id": 100_257, "eos_token_id": 100_265, "pad_token_id": 100_349}

_PHI4_14B = {
    **_PHI4_TOKENS,
    "hidden_size": 5120,
    "intermediate_size": 17_920,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
    "num_key_value_heads": 10,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

PRESETS: dict[str, dict] = {
    # Pretraining shape: 4K context, RoPE base 10,000.
    "phi4-14b": {**_PHI4_14B, "max_position_embeddings": 4096, "original_max_position_embeddings": 4096,
                 "rope_theta": 10_000.0},
    # After midtraining: 16K context, RoPE base 250,000 (what microsoft/phi-4 ships).
    "phi4-14b-16k": {**_PHI4_14B, "max_position_embeddings": 16_384, "original_max_position_embeddings": 16_384,
                     "rope_theta": 250_000.0},
    # ~1.2B with the real vocabulary: the GPU throughput benchmark's size (ours, not from the report).
    "phi4-1b": {**_PHI4_TOKENS, "hidden_size": 2048, "intermediate_size": 7168, "num_hidden_layers": 16,
                "num_attention_heads": 16, "num_key_value_heads": 4, "max_position_embeddings": 4096,
                "original_max_position_embeddings": 4096, "rope_theta": 10_000.0, "tie_word_embeddings": False},
    # ~370M with the real vocabulary: SFT + DPO fit one 16 GB GPU (ours).
    "phi4-colab": {**_PHI4_TOKENS, "hidden_size": 1024, "intermediate_size": 3584, "num_hidden_layers": 12,
                   "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                   "original_max_position_embeddings": 4096, "rope_theta": 10_000.0, "tie_word_embeddings": False},
    # ~2.9M for CPU tests and the tiny pipeline; ids follow the tiny tokenizer (tokenizer.TINY_SPECIAL_TOKENS).
    "tiny": {"vocab_size": 1024, "bos_token_id": 0, "eos_token_id": 5, "pad_token_id": 8,
             "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 1024, "original_max_position_embeddings": 1024,
             "rope_theta": 10_000.0, "tie_word_embeddings": False},
}


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
