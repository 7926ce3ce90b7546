"""Named model sizes. Phi-4 numbers are from the technical report and the released checkpoint."""

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
