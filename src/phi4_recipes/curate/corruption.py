"""Signals of corrupted, garbled or spammy text, and one rule set that names why a document fails.

Signals: repeated lines/paragraphs, Gopher-style top and duplicated n-gram character fractions, character
class ratios (letters, digits, symbols, control and replacement characters, mojibake), and the zlib
compression ratio (boilerplate spam compresses far better than prose; random bytes barely compress).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

WORD = re.compile(r"\w+", re.UNICODE)
PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")
# UTF-8 read as Latin-1/cp1252 leaves these pairs behind ("Ã©" for "é", "â€™" for "’").
MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]")
SYMBOLS_OF_MARKUP = set("#*|-_=`$\\{}[]<>/")
# Code and formulas repeat tokens legitimately ("\\frac{1}{2}", "self."), so n-gram repetition is measured on prose.
NON_PROSE = re.compile(r"```.*?```|~~~~.*?~~~~|\$\$.*?\$\$|\$[^$\n]+\$", re.S)


@dataclass
class CorruptionThresholds:
    """Limits beyond which a document is dropped. Defaults follow Gopher/FineWeb where those exist."""

    min_chars: int = 100
    max_duplicate_line_fraction: float = 0.30
    max_duplicate_paragraph_fraction: float = 0.30
    max_duplicate_line_char_fraction: float = 0.20
    max_top_ngram_char_fraction: tuple[float, float, float] = (0.20, 0.18, 0.16)  # n = 2, 3, 4
    max_duplicate_ngram_char_fraction: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)  # n = 5..10
    min_alpha_fraction: float = 0.45
    max_digit_fraction: float = 0.35
    max_symbol_fraction: float = 0.25
    max_control_fraction: float = 0.005
    max_replacement_fraction: float = 0.005
    max_mojibake_per_char: float = 0.003
    min_compression_ratio: float = 0.18
    max_compression_ratio: float = 0.90
    min_chars_for_compression: int = 600
    min_words_for_ngrams: int = 100
    max_long_ascii_token_fraction: float = 0.3


@dataclass
class CorruptionStats:
    """Measured signals of one document (fractions are in [0, 1])."""

    chars: int
    duplicate_line_fraction: float
    duplicate_paragraph_fraction: float
    duplicate_line_char_fraction: float
    top_ngram_char_fraction: tuple[float, float, float]
    duplicate_ngram_char_fraction: tuple[float, ...]
    alpha_fraction: float
    digit_fraction: float
    symbol_fraction: float
    control_fraction: float
    replacement_fraction: float
    mojibake_per_char: float
    compression_ratio: float
    prose_words: int
    long_ascii_token_fraction: float


def _duplicate_fractions(items: list[str]) -> tuple[float, float]:
    """Share of items that repeat an earlier one, and share of characters in those repeats."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    total_chars = sum(len(item) for item in items) or 1
    return dup_items / len(items), dup_chars / total_chars


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters covered by the most frequent word n-gram, over all word characters (Gopher)."""
    if len(words) < n:
        return 0.0
    counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    gram, count = counts.most_common(1)[0]
    if count < 2:
        return 0.0
    total = sum(len(w) for w in words) or 1
    return sum(len(w) for w in gram) * count / total


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of words inside any n-gram seen earlier in the document, over all word characters."""
    if len(words) < n:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        else:
            seen.add(gram)
    total = sum(len(w) for w in words) or 1
    return sum(len(w) for w, hit in zip(words, covered) if hit) / total


def compression_ratio(text: str) -> float:
    """zlib-compressed size over UTF-8 size (lower = more repetitive)."""
    raw = text.encode("utf-8", errors="replace")
    return len(zlib.compress(raw, 6)) / max(len(raw), 1)


def measure(text: str) -> CorruptionStats:
    """Compute every corruption signal of `text`."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in PARAGRAPH_SPLIT.split(text) if p.strip()]
    words = [w.lower() for w in WORD.findall(NON_PROSE.sub(" ", text))]
    # Base64 blobs, hex dumps and minified junk: long space-free ASCII runs (CJK prose has no spaces but is not ASCII).
    long_ascii = sum(len(token) for token in text.split() if len(token) > 40 and token.isascii())
    dup_lines, dup_line_chars = _duplicate_fractions(lines)
    dup_paragraphs, _ = _duplicate_fractions(paragraphs)
    alpha = digit = symbol = control = space = 0
    for ch in text:
        if ch.isalpha():
            alpha += 1
        elif ch.isdigit():
            digit += 1
        elif ch.isspace():
            space += 1
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            control += 1
        elif not ch.isalnum() and ch not in SYMBOLS_OF_MARKUP and ch not in ".,;:!?'\"()%+&@’“”«»、。，：；！？":
            symbol += 1
    visible = max(len(text) - space, 1)
    return CorruptionStats(
        chars=len(text),
        duplicate_line_fraction=dup_lines,
        duplicate_paragraph_fraction=dup_paragraphs,
        duplicate_line_char_fraction=dup_line_chars,
        top_ngram_char_fraction=tuple(top_ngram_char_fraction(words, n) for n in (2, 3, 4)),
        duplicate_ngram_char_fraction=tuple(duplicate_ngram_char_fraction(words, n) for n in range(5, 11)),
        alpha_fraction=alpha / visible,
        digit_fraction=digit / visible,
        symbol_fraction=symbol / visible,
        control_fraction=control / max(len(text), 1),
        replacement_fraction=text.count("\ufffd") / max(len(text), 1),
        mojibake_per_char=len(MOJIBAKE.findall(text)) / max(len(text), 1),
        compression_ratio=compression_ratio(text),
        prose_words=len(words),
        long_ascii_token_fraction=long_ascii / max(len(text), 1),
    )


# (reason, measured signal, threshold field, fails when below the threshold), in the order they are checked.
_SIMPLE_RULES = (
    ("control_chars", "control_fraction", "max_control_fraction", False),
    ("replacement_chars", "replacement_fraction", "max_replacement_fraction", False),
    ("mojibake", "mojibake_per_char", "max_mojibake_per_char", False),
    ("long_tokens", "long_ascii_token_fraction", "max_long_ascii_token_fraction", False),
    ("high_digits", "digit_fraction", "max_digit_fraction", False),
    ("high_symbols", "symbol_fraction", "max_symbol_fraction", False),
    ("low_alpha", "alpha_fraction", "min_alpha_fraction", True),
    ("duplicate_lines", "duplicate_line_fraction", "max_duplicate_line_fraction", False),
    ("duplicate_paragraphs", "duplicate_paragraph_fraction", "max_duplicate_paragraph_fraction", False),
    ("duplicate_line_chars", "duplicate_line_char_fraction", "max_duplicate_line_char_fraction", False),
)


def corruption_reason(text: str, thresholds: CorruptionThresholds | None = None) -> str | None:
    """Why `text` looks corrupted, or None when it passes every check.

    Args:
        text (str): extracted document text.
        thresholds (CorruptionThresholds | None): limits (defaults when None).

    Returns:
        str | None: a short reason ("too_short", "duplicate_lines", "top_3gram", "duplicate_7gram",
        "control_chars", "replacement_chars", "mojibake", "long_tokens",
        "high_digits", "high_symbols", "low_alpha", "too_compressible", "incompressible"), checked cheapest first.
    """
    t = thresholds or CorruptionThresholds()
    if len(text.strip()) < t.min_chars:
        return "too_short"
    s = measure(text)
    for reason, signal, threshold, too_low in _SIMPLE_RULES:
        value, limit = getattr(s, signal), getattr(t, threshold)
        if (value < limit) if too_low else (value > limit):
            return reason
    if s.prose_words >= t.min_words_for_ngrams:
        # Short texts repeat a bigram or two by chance; the n-gram rules only mean something on longer prose.
        for n, (value, limit) in enumerate(zip(s.top_ngram_char_fraction, t.max_top_ngram_char_fraction), start=2):
            if value > limit:
                return f"top_{n}gram"
        for n, (value, limit) in enumerate(
                zip(s.duplicate_ngram_char_fraction, t.max_duplicate_ngram_char_fraction), start=5):
            if value > limit:
                return f"duplicate_{n}gram"
    if s.chars >= t.min_chars_for_compression:
        if s.compression_ratio < t.min_compression_ratio:
            return "too_compressible"
        if s.compression_ratio > t.max_compression_ratio:
            return "incompressible"
    return None
