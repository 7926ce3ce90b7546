"""bench/curate_dev_columns.py's references and counts on a hand-written page whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import curate_dev_columns  # noqa: E402

PAGE = """<html><body>
<pre>1
2</pre><pre>x = 1
    y = x + 1</pre>
<table><tr><td>Flour</td><td>125 g</td></tr><tr><td>Sugar</td><td>65 g</td></tr></table>
<table><tr><td><table><tr><td>inner</td><td>layout</td></tr></table></td><td>outer cell</td></tr></table>
<div class="js-post-body">one two three four five six seven eight nine ten</div>
<div class="js-post-body">alpha beta gamma delta epsilon zeta eta theta iota kappa</div>
<script type="math/tex">\\frac{a}{b}</script>
</body></html>"""


def test_reference_reads_code_rows_posts_and_formulas_from_the_source():
    ref = curate_dev_columns.page_reference(PAGE)
    assert dict(ref["code"]) == {"x = 1": 1, "y = x + 1": 1}  # the digit-only gutter <pre> is not code
    assert ["Flour", "125 g"] in ref["rows"] and ["Sugar", "65 g"] in ref["rows"]
    assert ["inner", "layout"] in ref["rows"]  # the innermost table is data, the table around it layout
    assert not any("outer cell" in row for row in ref["rows"])
    assert len(ref["posts"]) == 2
    assert ref["formulas"] == ["\\frac{a}{b}"]


def test_counts_credit_lines_rows_posts_and_formulas_once():
    ref = curate_dev_columns.page_reference(PAGE)
    out = ("```\nx = 1\n    y = x + 1\n```\n\nx = 1\n\n| Flour | 125 g |\n| --- | --- |\n\nSugar\n65 g\n\n"
           "one two three four five six seven eight nine ten\n\n$\\frac{a}{b}$")
    counts = curate_dev_columns.column_counts(ref, out)
    assert counts["code lines"] == (2, 2)  # "x = 1" written twice is kept once
    assert counts["rows"] == (1, 3)  # the Sugar row lost its line; the innermost table's row was never written
    assert counts["posts"] == (1, 2)
    assert counts["formulas"] == (1, 1)
    assert curate_dev_columns.column_counts(ref, "") == {"code lines": (0, 2), "posts": (0, 2), "rows": (0, 3),
                                                         "formulas": (0, 1)}
