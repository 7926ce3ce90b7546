"""Per-column counts for the real-page bench: code lines, thread posts, table rows and formulas kept.

The curate-dev pages carry only 'with'/'without' snippets, so each column's reference is read from the page's
own source with lexbor, the same way for every extractor:
  code lines  non-empty lines of each outermost <pre> (and of multi-line <code> outside <pre>); line-number
              gutters (lines that are only digits) are not code. A line is kept when an output line equals it
              with whitespace collapsed; counted as a multiset, so a block written twice is kept once.
  posts       post bodies found by forum/Q&A body selectors (pages with two or more, >= 8 words each); a post
              is kept when >= 70% of its word 4-grams are in the output.
  rows        rows with >= 2 non-empty cells of tables that hold no table (a table around tables is layout);
              a row is kept when its cells occur, in order, on one output line.
  formulas    TeX in the source (math/tex scripts, x-tex annotations, alttext, LaTeX image alts); kept when its
              whitespace-free TeX occurs in the whitespace-free output.
Boilerplate regions are not excluded from the references, so no extractor reaches 100% on every column.
"""

from __future__ import annotations

import re
from collections import Counter

from selectolax.lexbor import LexborHTMLParser

POST_BODIES = (".js-post-body, .post-text, .s-prose, .bbWrapper, [id^=post_message_], .post_body, .postcontent, "
               ".messageText, .cooked, .message-body, [itemprop=text]")
FORMULA_SOURCES = ("script[type^='math/tex'], annotation[encoding='application/x-tex'], math[alttext], "
                   "img.latex, img.tex, img[src*='latex.php']")
WORD = re.compile(r"\w+")


def _norm(line: str) -> str:
    # Soft hyphens are invisible; extractors that drop them must not lose the row or line for it.
    return " ".join(line.replace("\u00ad", "").split())


def _outermost(nodes) -> list:
    ids = {node.mem_id for node in nodes}
    kept = []
    for node in nodes:
        parent = node.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            kept.append(node)
    return kept


def _shingles(text: str) -> Counter:
    words = WORD.findall(text)
    return Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))


def page_reference(html: str) -> dict:
    """What each column can find on this page: code lines, post shingles, table rows, formula TeX."""
    tree = LexborHTMLParser(html)
    for node in tree.css("script:not([type^='math/tex']), style, noscript, template"):
        node.decompose()
    code: Counter = Counter()
    for node in _outermost(tree.css("pre, code")):
        text = (node.text(deep=True) or "").replace("\r\n", "\n").replace("\u00a0", " ")
        if node.tag == "code" and "\n" not in text.strip():
            continue
        code.update(line for line in map(_norm, text.split("\n")) if line and not line.isdigit())
    posts = []
    for node in _outermost(tree.css(POST_BODIES)):
        shingles = _shingles(node.text(deep=True, separator=" ") or "")
        if sum(shingles.values()) >= 5:
            posts.append(shingles)
    rows = []
    for table in tree.css("table"):
        if len(table.css("table")) > 1 or table.attributes.get("role") == "presentation":
            continue
        for row in table.css("tr"):
            cells = [_norm(cell.text(deep=True, separator=" ") or "") for cell in row.iter() if cell.tag in ("td", "th")]
            cells = [cell for cell in cells if WORD.search(cell)]
            if len(cells) >= 2:
                rows.append(cells)
    formulas = []
    for node in tree.css(FORMULA_SOURCES):
        tex = node.attributes.get("alttext") if node.tag == "math" else (
            node.attributes.get("alt") if node.tag == "img" else node.text(deep=True))
        tex = re.sub(r"\s+", "", (tex or "").replace("\\displaystyle", ""))
        if len(tex) >= 3 and not tex.isalnum():
            formulas.append(tex)
    return {"code": code, "posts": posts if len(posts) >= 2 else [], "rows": rows, "formulas": formulas}


def column_counts(reference: dict, out: str) -> dict[str, tuple[int, int]]:
    """(kept, total) per column for one extractor's output on one page; a column absent from the page is left out."""
    counts: dict[str, tuple[int, int]] = {}
    lines = [_norm(line) for line in out.split("\n")]
    if reference["code"]:
        have = Counter(line for line in lines if line)
        # A fence or a list marker may sit before the first code line; strip Markdown list/quote markers.
        have.update(re.sub(r"^(?:[-*>] |\d+\. )", "", line) for line in lines if line)
        kept = sum(min(count, have[line]) for line, count in reference["code"].items())
        counts["code lines"] = (kept, sum(reference["code"].values()))
    if reference["posts"]:
        out_shingles = _shingles(out)
        kept = sum(sum(min(c, out_shingles[k]) for k, c in post.items()) >= 0.7 * sum(post.values())
                   for post in reference["posts"])
        counts["posts"] = (kept, len(reference["posts"]))
    if reference["rows"]:
        kept = 0
        for cells in reference["rows"]:
            for line in lines:
                position = 0
                for cell in cells:
                    position = line.find(cell, position)
                    if position < 0:
                        break
                    position += len(cell)
                if position >= 0:
                    kept += 1
                    break
        counts["rows"] = (kept, len(reference["rows"]))
    if reference["formulas"]:
        squashed = re.sub(r"\s+", "", out.replace("\\displaystyle", ""))
        counts["formulas"] = (sum(tex in squashed for tex in reference["formulas"]), len(reference["formulas"]))
    return counts
