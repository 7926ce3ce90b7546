"""Markdown rendering for html_to_text: headings, paragraphs, lists, quotes, code and tables, in page order."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from phi4_recipes.curate.extract_code import (
    code_language,
    code_text,
    fence,
    line_elements,
    lines_as_code,
    render_pre,
    token_code_lines,
)
from phi4_recipes.curate.extract_main import BLOCK_TAGS
from phi4_recipes.curate.extract_math import LINE_BREAK, RenderState
from phi4_recipes.curate.extract_tables import render_table

BOILERPLATE_LINE = re.compile(
    r"^(©|copyright\b|all rights reserved|share (this|on)\b|follow us\b|sign up\b|subscribe\b|"
    r"accept (all )?cookies|we use cookies|read more\b|advertisement$|best viewed (in|with)\b)", re.IGNORECASE)
TEX_DELIMITERS = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
FENCED_BLOCK = re.compile(r"(\n\n(?:```|~~~).*?(?:```|~~~)\n\n)", re.S)
WHITESPACE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
BREAK_SPACING = re.compile(r"\s*\ue004\s*")
SKIPPED_TAGS = ("-comment", "img", "hr", "#comment")
STRUCTURE = "pre, table"


def render_blocks(node: LexborNode, blocks: list[str], state: RenderState) -> None:
    """Append the Markdown blocks of `node`'s children to `blocks` (inline runs become paragraphs)."""
    inline: list[str] = []
    start = len(blocks)
    breaks = codes = block_children = 0

    def flush() -> None:
        paragraph = inline_to_paragraph("".join(inline))
        inline.clear()
        if paragraph:
            blocks.append(paragraph)

    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            inline.append(child.text_content or "")
        elif tag in SKIPPED_TAGS:
            continue
        elif tag == "br":
            breaks += 1
            inline.append(LINE_BREAK)
        elif tag not in BLOCK_TAGS and "-" not in tag and (tag == "code" or child.css_first(STRUCTURE) is None):
            # Custom elements (<readme-toc>) and inline tags around code or tables (<font><pre>) are containers.
            codes += tag == "code"
            inline.append(render_inline(child))
        else:
            block_children += 1
            if inline:
                flush()
            _render_block(child, blocks, state)
    if inline:
        flush()
    if breaks >= 2 and codes >= 3 and not block_children:
        lines = token_code_lines(node)
        if lines:
            # One <code> per token, lines ended by <br>: a code block whose highlighter dropped <pre>.
            del blocks[start:]
            blocks.append(fence("\n".join(lines), code_language(node)))


def _render_block(node: LexborNode, blocks: list[str], state: RenderState) -> None:
    tag = node.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        text = inline_to_paragraph(render_inline(node)).replace("\n", " ")
        if text:
            blocks.append("#" * int(tag[1]) + " " + text)
    elif tag == "pre":
        blocks.append(render_pre(node))
    elif tag in ("div", "td", "figure") and line_elements(node):
        blocks.append(fence(lines_as_code(line_elements(node)), code_language(node)))
    elif tag in ("ul", "ol"):
        rendered = _render_list(node, state)
        if rendered:
            blocks.append(rendered)
    elif tag == "table":
        render_table(node, blocks, lambda cell, inner: render_blocks(cell, inner, state),
                     lambda caption: inline_to_paragraph(render_inline(caption)))
    elif tag == "blockquote":
        inner: list[str] = []
        render_blocks(node, inner, state)
        if node.css_first("pre, table") is not None:
            blocks.extend(inner)  # old pages indent whole sections with <blockquote>; code stays verbatim
        elif inner:
            blocks.append("\n".join("> " + line if line else ">" for line in "\n\n".join(inner).split("\n")))
    elif tag == "dt":
        text = inline_to_paragraph(render_inline(node))
        if text:
            blocks.append(text)
    else:
        render_blocks(node, blocks, state)


def render_inline(node: LexborNode) -> str:
    tag = node.tag
    if tag == "-text":
        return node.text_content or ""
    if tag == "br":
        return LINE_BREAK
    if tag in SKIPPED_TAGS:
        return ""
    if tag == "code":
        lines = line_elements(node)
        if lines:
            return "\n\n" + fence(lines_as_code(lines), code_language(node)) + "\n\n"
        code = code_text(node)
        if "\n" in code.strip():
            # A multi-line <code> outside <pre> is a code block that lost its <pre>.
            return "\n\n" + fence(code, code_language(node)) + "\n\n"
        code = collapse(code)
        return f"`{code}`" if code else ""
    text = "".join([render_inline(child) for child in node.iter(include_text=True)])
    if tag == "sup" and text.strip() and not text.startswith(("\ue000", "\ue002")):
        return "^" + text.strip() if text.strip().isdigit() else text
    return text


def inline_to_paragraph(text: str) -> str:
    if "\n\n```" in text or "\n\n~~~" in text:
        # Keep fenced blocks produced by a multi-line inline <code> verbatim. The pieces between them are
        # plain paragraphs (never split again), so an unclosed fence in the page's own text cannot recurse.
        pieces = FENCED_BLOCK.split(text)
        paragraphs = (piece.strip("\n") if FENCED_BLOCK.fullmatch(piece) else _plain_paragraph(piece)
                      for piece in pieces if piece.strip())
        return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
    return _plain_paragraph(text)


def collapse(text: str | None) -> str:
    if not text:
        return ""
    if text.isascii():  # str.split runs in C; it also splits on the \x1c-\x1f controls, invisible anyway
        return " ".join(text.split())
    return WHITESPACE.sub(" ", text.replace("\u00ad", "")).strip()


def _plain_paragraph(text: str) -> str:
    text = collapse(text)
    if not text:
        return ""
    if LINE_BREAK in text:
        text = BREAK_SPACING.sub("\n", text).strip()
        if not text:
            return ""
    if len(text) < 120 and BOILERPLATE_LINE.match(text):
        return ""
    if "\\(" in text or "\\[" in text:
        # Raw MathJax source in the page text: normalise the delimiters to $ / $$.
        text = TEX_DELIMITERS.sub(lambda m: f"$${m.group(2).strip()}$$" if m.group(2) else f"${m.group(1).strip()}$",
                                  text)
    return text


def _render_list(node: LexborNode, state: RenderState) -> str:
    ordered = node.tag == "ol"
    start = int(node.attributes.get("start") or 1) if (node.attributes.get("start") or "1").isdigit() else 1
    lines: list[str] = []
    number = start
    for item in node.iter(include_text=False):
        if item.tag != "li":
            if item.tag in ("ul", "ol"):
                nested = _render_list(item, state)
                if nested:
                    lines.append("\n".join("  " + line for line in nested.split("\n")))
            continue
        inner: list[str] = []
        render_blocks(item, inner, state)
        if not inner:
            continue
        marker = f"{number}. " if ordered else "- "
        number += 1
        body = "\n".join(inner)
        indent = " " * len(marker)
        lines.append(marker + body.replace("\n", "\n" + indent))
    return "\n".join(lines)
