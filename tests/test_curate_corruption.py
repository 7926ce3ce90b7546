"""Corruption filters: each reason is triggered by the text it is meant for, and clean pages pass."""

import random
import string
from pathlib import Path

import pytest

from phi4_recipes.curate.corruption import CorruptionThresholds, compression_ratio, corruption_reason, measure
from phi4_recipes.curate.extract import html_to_text

PROSE = ("Rivers carve valleys over millions of years by eroding rock and carrying sediment downstream. "
         "The speed of that process depends on the slope, the volume of water and the hardness of the rock. ")
FIXTURES = Path(__file__).parent / "fixtures" / "html" / "pages"


def _long_prose() -> str:
    rng = random.Random(0)
    words = PROSE.split()
    return " ".join(rng.choice(words) for _ in range(400))


def test_clean_prose_passes():
    assert corruption_reason(PROSE * 2 + "Some sediment reaches the sea.") is None


@pytest.mark.parametrize("page", sorted(FIXTURES.glob("*.html")), ids=lambda p: p.stem)
def test_fixture_pages_pass(page):
    assert corruption_reason(html_to_text(page.read_text(encoding="utf-8"))) is None


@pytest.mark.parametrize("text, reason", [
    ("too short", "too_short"),
    (PROSE + "\x07\x08\x01" * 20, "control_chars"),
    (PROSE + "\ufffd" * 10, "replacement_chars"),
    (PROSE + "Ã©tÃ© â€™ " * 10, "mojibake"),
    ("".join(random.Random(1).choice(string.ascii_letters + "+/") for _ in range(2000)), "long_tokens"),
    ("1234 5678 9012 " * 30 + PROSE, "high_digits"),
    ("... ,,, ;;; ::: !!! ??? " * 40 + PROSE, "low_alpha"),
    ("\n".join(["Click here to win a prize"] * 10 + [PROSE]), "duplicate_lines"),
    ("buy cheap watches " * 100, "top_2gram"),
])
def test_each_reason(text, reason):
    assert corruption_reason(text) == reason


def test_high_symbols_reason():
    text = PROSE + " ".join("word ©®™" for _ in range(60))
    assert corruption_reason(text) == "high_symbols"
    assert corruption_reason("@@ ~~ ^^ ¤¤ §§ ¶¶ " * 40 + PROSE) == "high_symbols"


def test_duplicate_ngrams_and_compression():
    repeated = _long_prose() + " " + " ".join(_long_prose().split()[:150])
    stats = measure(repeated)
    assert stats.duplicate_ngram_char_fraction[0] > 0.15
    assert corruption_reason(repeated, CorruptionThresholds(max_top_ngram_char_fraction=(1, 1, 1))).startswith(
        "duplicate_")
    assert compression_ratio("abc" * 1000) < 0.05 < compression_ratio(PROSE)
    spam = " ".join(f"page {i} of 999 next" for i in range(200))
    reason = corruption_reason(spam, CorruptionThresholds(max_top_ngram_char_fraction=(1, 1, 1),
                                                          max_duplicate_ngram_char_fraction=(1,) * 6,
                                                          max_digit_fraction=1.0))
    assert reason == "too_compressible"
