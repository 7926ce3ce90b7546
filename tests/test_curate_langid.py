"""fastText lid.176 (bundled .ftz) language id: documents, paragraphs, routing."""

import json
from pathlib import Path

import pytest

from phi4_recipes.curate.extract import html_to_text
from phi4_recipes.curate.langid import (
    bundled_model_path,
    detect_language,
    detect_paragraph_languages,
    language_shares,
    route_language,
)

FIXTURES = Path(__file__).parent / "fixtures" / "html"


def test_bundled_model_is_the_offline_lid176_ftz():
    path = bundled_model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 500_000


@pytest.mark.parametrize("page", sorted((FIXTURES / "pages").glob("*.html")), ids=lambda p: p.stem)
def test_fixture_language_matches_gold(page):
    gold = json.loads((FIXTURES / "expected" / f"{page.stem}.json").read_text(encoding="utf-8"))
    lang, score = detect_language(html_to_text(page.read_text(encoding="utf-8")))
    assert lang == gold["lang"]
    assert 0.5 < score <= 1.0


def test_paragraph_languages_expose_mixed_pages():
    text = ("The committee published its annual report on water quality in the northern districts today.\n\n"
            "Le comité a publié aujourd'hui son rapport annuel sur la qualité de l'eau dans les districts du nord.\n\n"
            "Der Ausschuss hat heute seinen Jahresbericht über die Wasserqualität in den nördlichen Bezirken veröffentlicht.")
    paragraphs = detect_paragraph_languages(text)
    assert [p.lang for p in paragraphs] == ["en", "fr", "de"]
    shares = language_shares(paragraphs)
    assert set(shares) == {"en", "fr", "de"} and abs(sum(shares.values()) - 1.0) < 1e-9


def test_code_and_math_do_not_decide_the_language():
    text = "Ceci est une explication en français de la fonction.\n\n```python\nfor item in items:\n    print(item)\n```"
    assert detect_language(text)[0] == "fr"


def test_empty_text_is_undetermined():
    assert detect_language("```\ncode only\n```  $x$") == ("und", 0.0)


def test_routing():
    assert route_language("pt", 0.9, {"pt": "romance", "es": "romance"}) == "romance"
    assert route_language("fi", 0.9, {"pt": "romance"}) == "other"
    assert route_language("en", 0.3, None) == "other"
    assert route_language("en", 0.9, None) == "en"
