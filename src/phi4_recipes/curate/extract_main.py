"""Where the article is: the content root, its densest running-text subtree, and the page's tail.

Sidebars, related lists, author boxes and comment sections sit beside the article, so descending while one
child holds almost all the running text leaves them outside; what follows the last block of running text is
the page's tail (tags, share prompts, "related" headings).
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from phi4_recipes.curate.extract_clean import text_length
from phi4_recipes.curate.extract_math import DISPLAY_MATH_OPEN, INLINE_MATH_OPEN

CONTENT_ROOT_SELECTORS = ("main", "[role=main]", "#mw-content-text", "#content", "#main-content",
                          ".post-content", ".entry-content", ".article-body", ".article-content", "#main")
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
    "li", "dl", "dt", "dd", "pre", "table", "blockquote", "figure", "figcaption", "hr", "form", "fieldset",
    "address", "details", "summary", "center", "body", "html", "tbody", "thead", "tfoot", "tr", "td", "th",
    "caption", "legend", "hgroup", "search",
}
CONTENT_BLOCK_CHARS = 100  # a block this long with a sentence end anywhere, or
CONTENT_SENTENCE_CHARS = 40  # a block this long that ends a sentence, is running text
SENTENCE_END = re.compile(r"[.!?。！？…]")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
DENSE_BLOCK_CHARS = 80
SHORT_RUN_BLOCKS = 3
DENSE_MIN_TOTAL = 300
DENSE_SHARE = 0.7
LEAD_MIN_CHARS = 80
STRUCTURED_MIN_CHARS = 50
STRUCTURED_MAX_LINK_SHARE = 0.2
LEAF_BLOCKS = {"p", "li", "td", "tr", "tbody", "pre", "blockquote"}
# Beside the descent, a sibling that is mostly one data table (product facts, ingredients) stays, even after
# the article and even when its cells are links.
TABLE_MAX_LINK_SHARE = 0.7  # as for link farms: ingredient names are often links
TABLE_MIN_CHARS = 30
TABLE_SIBLING_SHARE = 0.3


def content_root(body: LexborNode) -> LexborNode:
    """The page's declared main region (main, #content, a single article), else the body."""
    for selector in CONTENT_ROOT_SELECTORS:
        found = body.css(selector)
        if len(found) == 1 and len((found[0].text(deep=True) or "").strip()) > 200:
            return found[0]
    articles = body.css("article")
    if len(articles) == 1 and len((articles[0].text(deep=True) or "").strip()) > 200:
        return articles[0]
    return body


def densest_subtree(root: LexborNode) -> LexborNode:
    """The smallest element that still holds nearly all of the page's running text, plus its lead.

    Running text in earlier siblings along the descent stays (teasers, leads), and so do link-free lists and
    tables (ingredients, specifications) before it and data tables on either side; everything else beside the
    path is removed.
    """
    weights = _running_text_weights(root)
    total = weights.get(root.mem_id, 0)
    if total < DENSE_MIN_TOTAL:
        return root
    path = [root]
    node = root
    while True:
        best, best_weight = None, 0
        for child in node.iter(include_text=False):
            weight = weights.get(child.mem_id, 0)
            if weight > best_weight:
                best, best_weight = child, weight
        if best is None or best_weight < DENSE_SHARE * weights.get(node.mem_id, 0) or best.tag in LEAF_BLOCKS:
            break
        path.append(best)
        node = best
    for parent, kept in zip(path, path[1:]):
        before = True
        for child in list(parent.iter(include_text=True)):
            if child.mem_id == kept.mem_id:
                before = False
            elif before and (weights.get(child.mem_id, 0) >= LEAD_MIN_CHARS or _is_link_free_list(child)):
                continue
            elif not _is_data_table_block(child):
                child.remove()
    return path[0]


def _is_data_table_block(node: LexborNode) -> bool:
    """A block that is mostly one table of several rows, without tables inside and not a link list."""
    if node.tag == "-text":
        return False
    table = node if node.tag == "table" else node.css_first("table")
    if table is None or len(table.css("table")) > 1 or len(table.css("tr")) < 2:
        return False
    table_len = text_length(table.text(deep=True))
    if table_len < TABLE_MIN_CHARS or table_len < TABLE_SIBLING_SHARE * text_length(node.text(deep=True)):
        return False
    return sum(text_length(link.text(deep=True)) for link in table.css("a")) <= TABLE_MAX_LINK_SHARE * table_len


def _running_text_weights(root: LexborNode) -> dict[int, int]:
    """Characters of running text (long, sentence-ending, outside links) under each element, by mem_id.

    One pass over the text nodes: each is credited to its nearest block element, and each block that reads as
    running text credits its length to every ancestor up to `root`.
    """
    block_text: dict[int, list] = {}
    for text_node in root.traverse(include_text=True):
        if text_node.tag != "-text":
            continue
        raw = text_node.text_content
        if not raw or raw.isspace():
            continue
        node = text_node.parent
        in_link = False
        while node is not None and node.tag not in BLOCK_TAGS:
            if node.tag == "a":
                in_link = True
            node = node.parent
        if node is None:
            continue
        entry = block_text.get(node.mem_id)
        if entry is None:
            entry = block_text[node.mem_id] = [node, 0, 0, False]
        length = len(raw.strip())
        if not raw.isascii():
            length += 2 * len(CJK.findall(raw))  # one CJK character carries about as much as a short word
        entry[1] += length
        if in_link:
            entry[2] += length
        elif not entry[3] and SENTENCE_END.search(raw) is not None:
            entry[3] = True
    weights: dict[int, int] = {}
    stop = root.mem_id
    for node, length, link_length, has_sentence in block_text.values():
        plain = length - link_length
        if not has_sentence or plain < DENSE_BLOCK_CHARS or link_length > 0.5 * length:
            continue
        while node is not None:
            weights[node.mem_id] = weights.get(node.mem_id, 0) + plain
            if node.mem_id == stop:
                break
            node = node.parent
    return weights


def _is_link_free_list(node: LexborNode) -> bool:
    """Ingredients, specifications, facts tables: structured content with no sentences, rarely links."""
    if node.tag == "-text" or node.css_first("ul, ol, dl, table") is None:
        return False
    text_len = text_length(node.text(deep=True))
    if text_len < STRUCTURED_MIN_CHARS:
        return False
    return sum(text_length(link.text(deep=True)) for link in node.css("a")) <= STRUCTURED_MAX_LINK_SHARE * text_len


def is_content_block(block: str) -> bool:
    """A block a reader came for: running text with a sentence end, code, a table or a formula."""
    if block.startswith(("```", "~~~", "| ")) or DISPLAY_MATH_OPEN in block or INLINE_MATH_OPEN in block:
        return True
    if block.startswith("#"):
        return False
    # One CJK character carries about as much as a short word: weigh it as three.
    weight = len(block) + (2 * len(CJK.findall(block)) if not block.isascii() else 0)
    if weight >= CONTENT_BLOCK_CHARS and SENTENCE_END.search(block) is not None:
        return True
    return weight >= CONTENT_SENTENCE_CHARS and SENTENCE_END.match(block[-1]) is not None


def drop_tail_after_content(blocks: list[str]) -> list[str]:
    """Drop the short blocks after the last block of running text, and headings inside runs of short blocks.

    jusText's neighbour rule for headings: one that introduces running text is kept; headings inside a run of
    three or more short blocks are teaser titles and section labels ("More on this", "Latest news").
    """
    content = [is_content_block(block) for block in blocks]
    last = max((index for index, good in enumerate(content) if good), default=len(blocks) - 1)
    kept: list[str] = []
    index = 0
    while index <= last:
        end = index
        while end <= last and not content[end]:
            end += 1
        if end - index >= SHORT_RUN_BLOCKS and any(content[:index]):
            kept.extend(block for block in blocks[index:end] if not block.startswith("#"))
        else:
            kept.extend(blocks[index:end])
        if end <= last:
            kept.append(blocks[end])
        index = end + 1
    return kept
