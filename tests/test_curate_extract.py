"""html_to_text on the 34 fixture pages (gold = the content the builder put in) and on edge cases."""

import json
import re
from pathlib import Path

import pytest

from phi4_recipes.curate.extract import html_to_text

FIXTURES = Path(__file__).parent / "fixtures" / "html"
NAMES = sorted(p.stem for p in (FIXTURES / "pages").glob("*.html"))
MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+)\$", re.S)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _extract(name: str) -> tuple[str, dict]:
    html = (FIXTURES / "pages" / f"{name}.html").read_text(encoding="utf-8")
    gold = json.loads((FIXTURES / "expected" / f"{name}.json").read_text(encoding="utf-8"))
    return html_to_text(html), gold


def test_fixture_set_is_large_and_varied():
    kinds = {json.loads((FIXTURES / "expected" / f"{n}.json").read_text())["kind"] for n in NAMES}
    langs = {json.loads((FIXTURES / "expected" / f"{n}.json").read_text())["lang"] for n in NAMES}
    assert len(NAMES) >= 30
    assert {"blog_mathjax", "blog_katex", "wiki", "stack_exchange", "docs", "forum", "news"} <= kinds
    assert len(langs - {"en"}) >= 6


@pytest.mark.parametrize("name", NAMES)
def test_fixture_keeps_content_and_drops_boilerplate(name):
    text, gold = _extract(name)
    formulas = {_squash(a or b) for a, b in MATH_SPAN.findall(text)}
    for tex in gold["math"]:
        assert _squash(tex) in formulas, f"{name}: formula {tex!r} not kept as $...$"
    for code in gold["code"]:
        assert re.search(r"(```|~~~~)[\w+#-]*\n" + re.escape(code) + r"\n(```|~~~~)", text), f"{name}: code lost"
    lines = text.split("\n")
    for rows in gold["tables"]:
        for row in rows:
            cells = "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
            assert cells in lines, f"{name}: table row {row} not rendered as a Markdown row"
    flat = re.sub(r"\s+", " ", text)
    for sentence in gold["text"]:
        assert sentence in flat, f"{name}: lost {sentence!r}"
    for boilerplate in gold["absent"]:
        assert boilerplate not in text, f"{name}: kept boilerplate {boilerplate!r}"


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith(("se_", "forum_"))])
def test_threads_are_ordered_posts_with_metadata(name):
    text, gold = _extract(name)
    headers = [line for line in text.split("\n") if line.startswith("### Post ")]
    assert len(headers) == len(gold["posts"])
    for number, (header, post) in enumerate(zip(headers, gold["posts"]), start=1):
        role = post["role"] + (", accepted" if post["accepted"] else "")
        assert header.startswith(f"### Post {number} ({role})")
        assert f"author: {post['author']}" in header
        if post["score"] is not None:
            assert header.endswith(f"score: {post['score']}")


@pytest.mark.parametrize("golden", sorted((FIXTURES / "expected").glob("*.md")), ids=lambda p: p.stem)
def test_golden_outputs(golden):
    text, _ = _extract(golden.stem)
    assert text + "\n" == golden.read_text(encoding="utf-8")


def test_mathml_without_annotation_is_converted():
    html = ("<p>Root: <math><mroot><mi>x</mi><mn>3</mn></mroot><mo>≤</mo><munderover><mo>∑</mo><mrow><mi>k</mi>"
            "<mo>=</mo><mn>0</mn></mrow><mi>n</mi></munderover><mover><mi>v</mi><mo>→</mo></mover>"
            "<mi>sin</mi><mi>α</mi></math> end.</p>")
    assert html_to_text(html) == r"Root: $\sqrt[3]{x}\leq\sum_{k=0}^n\vec{v}\sin\alpha$ end."


def test_layout_table_is_not_a_markdown_table_but_nested_data_table_is():
    html = ("<table><tr><td><p>Intro paragraph of a page laid out with tables, long enough to be content.</p>"
            "<table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>2</td></tr></table></td></tr></table>")
    text = html_to_text(html)
    assert text.startswith("Intro paragraph")
    assert "| k | v |\n| --- | --- |\n| 1 | 2 |" in text


def test_code_keeps_indentation_entities_and_language():
    html = '<pre><code class="lang-cpp">if (a &lt; b) {\n\treturn 1;\n}</code></pre>'
    assert html_to_text(html) == "```cpp\nif (a < b) {\n\treturn 1;\n}\n```"


def test_code_with_triple_backticks_uses_tilde_fence():
    assert html_to_text("<pre>```py\nx = 1\n```</pre>").startswith("~~~~\n```py")


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "<<<>>>", "\x00\x01garbage", "<div" * 1000,
                                  "<table><tr><td colspan=abc>x</td><td colspan=9999>y</td></tr></table>"])
def test_broken_html_never_raises(html):
    assert isinstance(html_to_text(html), str)


def test_hidden_and_cookie_elements_dropped_but_content_kept():
    html = ('<body><div class="cookie-notice">Accept cookies now</div><div style="display: none">hidden text</div>'
            '<article><p>Real content stays in the output.</p></article></body>')
    assert html_to_text(html) == "Real content stays in the output."


# One small hand-made page per failure class seen on real pages (issue 18): what must stay, what must go.
FAILURE_CLASSES = {
    "layout_wrapper_names": (["# Spring floods in the delta", "only two dry years noted by the monks."],
                             ["Sidebar teaser", "We use cookies", "Contact"]),
    "thread_widgets": (["Tutorial box: cut at a slant", "lets the tree heal quickly"],
                       ["### Post", "Related post one", "Save"]),
    "se_question_wraps_answers": (["### Post 1 (question) | author: baker_bea\n\nMy starter bubbles",
                                   "### Post 2 (answer, accepted) | author: crumb_carl | score: 12",
                                   "### Post 3 (answer) | author: rye_rita | score: 3\n\nFeed the starter"], []),
    "unclosed_fence": (["```python and never close it, or with ~~~ the same way.",
                        "however many fences it holds."], []),
    "line_per_div_code": (['```\nwith open("data.txt") as f:\n    for line in f:\n        print(line)\n```'], ["`with`"]),
    "stray_characters": (["The Donaudampfschifffahrt was famous, and so was 東京 station.",
                          "An icon font glyph and 12 or sit in this sentence"],
                         ["\u00ad", "とうきょう", "(", "\ue000", "\ue001", "\ue004"]),
    "infobox_and_api_table": (["| Country | France |", "| Outflow | Yonne |", "joins the Yonne near Auxerre."], []),
    "boilerplate_lists": (["# Fixing a bicycle chain", "thread the new chain through the derailleur."],
                          ["By Sam Lee", "Related articles", "Ten saddles tested", "Tags: bikes"]),
    # An API reference nests a table of values in a description cell: still a data table, one row per option.
    "api_table_nested": (["| Option | Type | Description |", "| `timeout` | float | Seconds to wait",
                          '| `retry` | str | How failed requests are retried: `"none"`: never retry; `"backoff"`:'],
                         ["\nOption\n"]),
    # One <code> per token and <br> between lines, no <pre> and no div.line: a code block, line by line.
    "token_code_with_breaks": (['```\ndef count_words(text):\n    return len(text.split())\n\nprint(count_words("a b c"))\n```'],
                               ["`def`"]),
    "unclosed_banner": (["# Council approves the new bridge", "before the autumn rains, the council said."],
                        ["Valley Times"]),
}


@pytest.mark.parametrize("name", sorted(FAILURE_CLASSES))
def test_failure_class_pages(name):
    text = html_to_text((FIXTURES / "failure_classes" / f"{name}.html").read_text(encoding="utf-8"))
    kept, absent = FAILURE_CLASSES[name]
    for snippet in kept:
        assert snippet in text, f"{name}: lost {snippet!r}"
    for snippet in absent:
        assert snippet not in text, f"{name}: kept {snippet!r}"
