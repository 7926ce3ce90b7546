"""Code blocks for html_to_text: every line of a block, verbatim with its indentation, once, as fenced code.

Handles `<pre>` (with or without `<code>`), one span per token, line-number gutters (spans inside the block,
or a column of their own), one element per line (`<div class="line">`), `<br>`-separated `<code>` tokens,
and table-based highlighters: Pygments' `linenos="table"`, SyntaxHighlighter, GitHub's and highlight.js's
one-row-per-line tables.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

INLINE_CODE_TAGS = {"code", "span", "b", "i", "em", "strong", "a", "var", "kbd", "samp", "font"}
CODE_LINE_CLASSES = {"line", "code-line", "cm-line", "highlight-line", "hljs-ln-line", "token-line", "ace_line"}
GUTTER_SELECTOR = (".lineno, .linenos, .line-number, .line-numbers, .gutter, .line-numbers-rows, .linenumber, "
                   ".hljs-ln-numbers, .blob-num, .ln, .rouge-gutter, [data-line-number]:empty")
GUTTER_WORDS = ("lineno", "linenum", "line-num", "gutter", "blob-num", "ln-num", "numbers")
CODE_CELL_WORDS = ("code", "blob-code", "hljs-ln-code")
# "language-python", "lang-js", "highlight-source-rust", "brush: php"; not "syntaxhighlighter" or "highlight tab-size".
CODE_LANGUAGE = re.compile(r"(?:(?<![\w-])(?:language|lang|brush:)[-\s]?|(?<![\w-])highlight(?:-source)?-)([a-z][\w+#-]*)",
                           re.I)
LINE_NUMBERS = re.compile(r"^[\s\d]*$")
BR_WITH_NEWLINE = re.compile(r"[ \t]*\r?\n?[ \t]*\x00(?:[ \t]*\r?\n)?")


def fence(code: str, language: str) -> str:
    code = code.strip("\n").rstrip()
    marks = "~~~~" if "```" in code else "```"
    return f"{marks}{language}\n{code}\n{marks}"


def render_pre(pre: LexborNode) -> str:
    """A `<pre>` as fenced code, without its line-number gutter."""
    for number in pre.css(GUTTER_SELECTOR):
        number.remove()
    lines = line_elements(pre)
    if lines and "\n" not in (pre.text(deep=True) or "").strip():
        return fence(lines_as_code(lines), code_language(pre))  # one element per line, no newlines between
    return fence(code_text(pre), code_language(pre))


def code_text(node: LexborNode) -> str:
    """The node's text with `<br>` as a line break (text() drops it, joining two lines into one)."""
    if node.css_first("br") is None:
        text = node.text(deep=True) or ""
    else:
        text = "".join("\x00" if part.tag == "br" else part.text_content or ""
                       for part in node.traverse(include_text=True) if part.tag in ("br", "-text"))
        # Outside <pre> a source newline beside a <br> is only markup layout ("make\n<br>su"): one break.
        text = text.replace("\x00", "\n") if node.tag == "pre" else BR_WITH_NEWLINE.sub("\n", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")


def code_language(node: LexborNode) -> str:
    candidates = [node]
    inner = node.css_first("code")
    if inner is not None:
        candidates.append(inner)
    parent = node.parent
    for _ in range(2):
        if parent is None:
            break
        candidates.append(parent)
        parent = parent.parent
    for candidate in candidates:
        attrs = candidate.attributes
        for value in (attrs.get("class") or "", attrs.get("data-lang") or "", attrs.get("data-language") or ""):
            if attrs.get("data-lang") == value and value:
                return value.lower()
            match = CODE_LANGUAGE.search(value)
            if match and match.group(1).lower() not in ("default", "none", "plaintext", "text"):
                return match.group(1).lower()
    return ""


def line_elements(node: LexborNode) -> list[LexborNode]:
    """The children of a highlighter's "one element per line" code block, or [] when it is not one.

    Highlighters without newlines (one `<div class="line">` per line, one `<code>` or `<span>` per token) lose
    the line structure as soon as the text is collapsed, so the lines are read one element at a time.
    """
    children = list(node.iter(include_text=False))
    if len(children) < 2:
        return []
    lines = [child for child in children if set((child.attributes.get("class") or "").split()) & CODE_LINE_CLASSES]
    return lines if len(lines) >= 2 and len(lines) * 2 >= len(children) else []


def lines_as_code(lines: list[LexborNode]) -> str:
    return "\n".join((line.text(deep=True) or "").replace("\u00a0", " ").replace("\n", "").rstrip() for line in lines)


def token_code_lines(node: LexborNode) -> list[str]:
    """The lines of a `<br>`-separated block where every non-empty line holds a `<code>` token, else []."""
    lines: list[list[str]] = [[]]
    has_code = [False]
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "br":
            lines.append([])
            has_code.append(False)
        elif tag == "-text":
            lines[-1].append(child.text_content or "")
        elif tag in ("-comment", "#comment"):
            continue
        elif tag in INLINE_CODE_TAGS:
            has_code[-1] = has_code[-1] or tag == "code"
            lines[-1].append(child.text(deep=True) or "")
        else:
            return []
    texts = ["".join(parts).replace("\n", "").replace("\u00a0", " ").rstrip() for parts in lines]
    filled = [index for index, text in enumerate(texts) if text.strip()]
    if len(filled) < 2 or not all(has_code[index] for index in filled):
        return []
    return texts[filled[0]:filled[-1] + 1]


def code_table(table: LexborNode, rows: list[list[LexborNode]]) -> str | None:
    """A table that is a highlighter's layout (gutter column + code column), as fenced code; else None.

    Two shapes: one row holding a gutter cell and a code cell (Pygments `linenos="table"`, SyntaxHighlighter),
    or one row per source line (GitHub blobs, highlight.js line numbers), each with an optional gutter.
    """
    if not rows:
        return None
    language = code_language(table)
    if len(rows) == 1:
        code_cells = [cell for cell in rows[0] if not _is_gutter(cell) and _looks_like_code_cell(cell)]
        if len(code_cells) != 1 or len(code_cells) == len(rows[0]):
            return None
        cell = code_cells[0]
        pre = cell.css_first("pre")
        if pre is not None:
            return render_pre(pre)
        lines = _cell_lines(cell)
        return fence("\n".join(lines), language) if lines else None
    code_lines = []
    for cells in rows:
        code_cells = [cell for cell in cells if not _is_gutter(cell)]
        if len(code_cells) != 1 or len(cells) > 2 or not _looks_like_code_cell(code_cells[0]):
            return None
        code_lines.append((code_cells[0].text(deep=True) or "").replace("\u00a0", " ").replace("\n", "").rstrip())
    return fence("\n".join(code_lines), language)


def _cell_lines(cell: LexborNode) -> list[str]:
    for node in [cell, *cell.css("div, code")]:
        lines = line_elements(node)
        if lines:
            return lines_as_code(lines).split("\n")
    text = (cell.text(deep=True) or "").replace("\u00a0", " ")
    return text.split("\n") if "\n" in text.strip() else []


def _is_gutter(cell: LexborNode) -> bool:
    classes = (cell.attributes.get("class") or "").lower()
    if any(word in classes for word in GUTTER_WORDS):
        return True
    if any(word in classes for word in CODE_CELL_WORDS):
        return False  # an empty line of code is still code
    return cell.css_first("pre, code") is None and LINE_NUMBERS.match(cell.text(deep=True) or "") is not None


def _looks_like_code_cell(cell: LexborNode) -> bool:
    classes = (cell.attributes.get("class") or "").lower()
    return any(word in classes for word in CODE_CELL_WORDS) or cell.css_first("pre") is not None
