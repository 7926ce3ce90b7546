"""HTML -> Markdown-flavoured text that keeps what pretraining data needs and drops page chrome.

Kept: LaTeX (MathJax scripts, KaTeX/MathJax-3 renderings, Wikipedia math, `<math>` MathML, LaTeX images)
as `$...$` / `$$...$$`; code blocks verbatim as fenced code; data tables as Markdown tables; headings, lists
and quotes; forum and Q&A threads as ordered posts with author, score and accepted markers.
Dropped: navigation, headers/footers, ads, cookie banners, share bars, comment widgets, hidden elements and
link-dense blocks. The DOM is selectolax's lexbor tree (C); the rules on top live in one module each:
extract_math (formulas), extract_clean (chrome), extract_main (where the article is), extract_render
(Markdown), extract_code, extract_tables, threads.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from phi4_recipes.curate.extract_clean import drop_boilerplate, drop_link_dense_blocks, plain_text_length
from phi4_recipes.curate.extract_main import content_root, densest_subtree, drop_tail_after_content
from phi4_recipes.curate.extract_math import (
    LINE_BREAK,
    STRIPPED_CHARACTERS,
    RenderState,
    is_attached,
    replace_math,
    restore_formulas,
    strip_marker_characters,
)
from phi4_recipes.curate.extract_render import collapse, render_blocks
from phi4_recipes.curate.threads import find_thread_posts, render_thread_header

# Share of the page's readable text the posts must hold for the page to be rendered as a thread.
THREAD_MIN_TEXT_SHARE = 0.4
TRAILING_SPACES = re.compile(r"[ \t]+\n")
BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(html: str, url: str | None = None) -> str:
    """Extract the main content of an HTML page as Markdown-flavoured text.

    Args:
        html (str): the page; any markup, however broken.
        url (str | None): the page URL; only used to recognise sites whose layout needs it (none yet
            beyond what the markup says), kept so callers can pass it uniformly.

    Returns:
        str: the extracted text ("" when the page has no content).
    """
    del url  # layout is read from the markup; the parameter keeps the public signature stable
    if not html or not html.strip():
        return ""
    # Icon fonts put private-use characters in pages; ours mark formulas and line breaks, so the page's go.
    # Soft hyphens are invisible hyphenation hints that would split words for every later filter.
    html = strip_marker_characters(html)
    body = LexborHTMLParser(html).body
    if body is None:
        return ""
    state = RenderState()
    replace_math(body, state)
    # Thread metadata is read before boilerplate removal, which drops vote widgets and <meta> microdata.
    posts = find_thread_posts(body)
    drop_boilerplate(body)
    posts = _thread_posts_holding_the_page(posts, body)
    title = _page_title(body)

    blocks: list[str] = []
    if posts:
        if title:
            blocks.append("# " + title)
        for number, post in enumerate(posts, start=1):
            blocks.append(render_thread_header(number, post))
            render_blocks(post.body, blocks, state)
    else:
        root = densest_subtree(content_root(body))
        drop_link_dense_blocks(root)
        render_blocks(root, blocks, state)
        blocks = drop_tail_after_content(blocks)
        if title and not any(block.startswith("# ") for block in blocks[:3]):
            blocks.insert(0, "# " + title)
    return _finish(blocks, state)


def _thread_posts_holding_the_page(posts: list, body: LexborNode) -> list:
    """The posts, if they are what the page is about; [] when they are a widget beside an article."""
    posts = [post for post in posts if is_attached(post.body)]
    if len(posts) < 2 and not any(post.role == "question" for post in posts):
        return []
    posts_plain = sum(plain_text_length(post.element if post.element is not None else post.body) for post in posts)
    return posts if posts_plain >= THREAD_MIN_TEXT_SHARE * plain_text_length(body) else []


def _page_title(body: LexborNode) -> str:
    heading = body.css_first("h1")
    return collapse(heading.text(deep=True)) if heading is not None else ""


def _finish(blocks: list[str], state: RenderState) -> str:
    text = restore_formulas("\n\n".join(block for block in blocks if block.strip()), state)
    # Markers in places no renderer joined (code, titles) must not reach the output either.
    text = STRIPPED_CHARACTERS.sub("", text.replace(LINE_BREAK, "\n"))
    text = TRAILING_SPACES.sub("\n", text)
    return BLANK_LINES.sub("\n\n", text).strip()
