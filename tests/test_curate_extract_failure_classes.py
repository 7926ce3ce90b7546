"""html_to_text on hand-made pages, one per failure class of code, tables and threads (issue 38).

Each page holds one shape that real pages use and that an extractor gets wrong in a known way: a gutter
column read as code, a highlighter table rendered as a data table, comment tokens dropped by a class-name
rule, `<br>` lines joined, a custom element flattened, widgets with post ids splitting a thread, a data table
beside the article dropped. The expected text is written out here, not derived from the extractor.
"""

from pathlib import Path

import pytest

from phi4_recipes.curate.extract import html_to_text

PAGES = Path(__file__).parent / "fixtures" / "html" / "failure_classes"


def _text(name: str) -> str:
    return html_to_text((PAGES / f"{name}.html").read_text(encoding="utf-8"))


def _lines(text: str) -> list[str]:
    return text.split("\n")


# page -> the code blocks it must contain, verbatim with indentation, each exactly once
CODE_PAGES = {
    "code_pygments_table": ["def order(items):\n    # sort in place, then hand the list back\n    return sorted(items)"],
    "code_syntaxhighlighter_lines": ["def count(text):\n    # one word per run of spaces\n    return len(text.split())"],
    "code_blob_rows": ['import json\n\nwith open("config.json") as f:\n    settings = json.load(f)  # a dict'],
    "code_comment_tokens_and_breaks": ["# fetch the archive first\ncurl -O https://example.org/data.tgz # about 2 MB",
                                       "tar xzf data.tgz\ncd data\nmake install", "ls -l\n  du -sh ."],
    "code_in_custom_element_and_quote": ["pip install yarnkit", "# check the library\n    ldd /usr/bin/openssl"],
}


@pytest.mark.parametrize("name", sorted(CODE_PAGES))
def test_code_blocks_are_fenced_verbatim_once(name):
    text = _text(name)
    for code in CODE_PAGES[name]:
        assert f"\n{code}\n```" in text, f"{name}: block not kept verbatim:\n{code}\n--- got ---\n{text}"
        first_line = code.split("\n")[0]
        assert text.count(first_line) == 1, f"{name}: {first_line!r} written more than once"


@pytest.mark.parametrize("name", ["code_pygments_table", "code_syntaxhighlighter_lines", "code_blob_rows"])
def test_highlighter_tables_are_code_not_tables_and_lose_their_gutter(name):
    lines = _lines(_text(name))
    assert not any(line.startswith("| ") for line in lines), f"{name}: highlighter table rendered as a data table"
    assert not any(line.strip().isdigit() for line in lines), f"{name}: line-number gutter kept"


def test_code_in_a_layout_quote_is_not_prefixed():
    text = _text("code_in_custom_element_and_quote")
    assert "> " not in text
    assert "still the page's content." in text


def test_thread_with_post_ids_on_widgets_is_every_post_in_order_with_author():
    text = _text("thread_widget_post_ids")
    headers = [line for line in _lines(text) if line.startswith("### Post ")]
    assert headers == ["### Post 1 (question) | author: lena_k | score: 22",
                       "### Post 2 (answer, accepted) | author: mattias | score: 15",
                       "### Post 3 (answer) | author: oskar.b | score: 3"]
    bodies = ["Which one should a learner use?", "describes that action in the past.", "rarely what a speaker means"]
    positions = [text.index(body) for body in bodies]
    assert positions == sorted(positions)
    assert "Improve this question" not in text  # the post menu is a widget, not a post


def test_data_table_beside_the_article_keeps_every_row_and_layout_table_is_text():
    text = _text("table_beside_article")
    lines = _lines(text)
    for row in ("| 125 g | Flour |", "| 65 g | Sugar |", "| 1 tsp | Baking powder |", "| 2 | Eggs |"):
        assert row in lines, f"row {row!r} lost"
    assert "Bake the cake at 175 degrees" in text
    assert "Layout cell one holds a short note about the oven." in text
    assert not any(line.startswith("| Layout") for line in lines)


def test_a_data_table_with_code_classes_stays_a_table():
    html = ("<html><body><article><h1>Status codes</h1><p>Every reply carries a status code, and the table below lists "
            "the ones this service sends back to its clients.</p><table><tr><th>Code</th><th>Meaning</th></tr>"
            "<tr><td class='code'>404</td><td>Not found</td></tr><tr><td class='code'>500</td><td>Server error</td>"
            "</tr></table></article></body></html>")
    lines = _lines(html_to_text(html))
    assert "| 404 | Not found |" in lines and "| 500 | Server error |" in lines
