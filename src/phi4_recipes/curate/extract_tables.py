"""Tables for html_to_text: data tables as Markdown rows (every row, cells in order); layout tables as text.

A table is layout when it says so (role=presentation), when it wraps other tables without header cells of
its own, or when it has a single column; a highlighter's gutter-and-code table is code (see extract_code).
"""

from __future__ import annotations

from collections.abc import Callable

from selectolax.lexbor import LexborNode

from phi4_recipes.curate.extract_clean import owning_table_id
from phi4_recipes.curate.extract_code import code_table
from phi4_recipes.curate.extract_math import (
    DISPLAY_MATH_CLOSE,
    DISPLAY_MATH_OPEN,
    INLINE_MATH_CLOSE,
    INLINE_MATH_OPEN,
)

# (node, blocks) -> appends the node's children as Markdown blocks; also used for a cell's content.
RenderChildren = Callable[[LexborNode, list], None]
MAX_COLSPAN = 50


def render_table(table: LexborNode, blocks: list[str], render_children: RenderChildren,
                 render_paragraph: Callable[[LexborNode], str]) -> None:
    rows = [row for row in table.css("tr") if owning_table_id(row) == table.mem_id]
    cell_rows = [[cell for cell in row.iter(include_text=False) if cell.tag in ("td", "th")] for row in rows]
    code = code_table(table, cell_rows) if table.css_first("pre, code, [class*=code], [class*=line]") else None
    if code is not None:
        blocks.append(code)
        return
    # css() matches the node itself too, so a nested table shows up as a second match. A table around tables
    # is layout, unless it has header cells of its own: API references nest a table of values in a cell.
    is_layout = table.attributes.get("role") == "presentation" or (
        len(table.css("table")) > 1 and not any(owning_table_id(th) == table.mem_id for th in table.css("th")))
    widths = [sum(_colspan(cell) for cell in cells) for cells in cell_rows]
    if is_layout or not rows or max(widths, default=0) < 2:
        render_children(table, blocks)
        return
    caption = table.css_first("caption")
    if caption is not None:
        text = render_paragraph(caption)
        if text:
            blocks.append(text)
    width = max(widths)
    markdown_rows = []
    for cells in cell_rows:
        values: list[str] = []
        for cell in cells:
            inner: list[str] = []
            render_children(cell, inner)
            value = " ".join(_table_as_cell_text(block) for block in inner).replace("\n", " ").replace("|", "\\|").strip()
            value = value.replace(DISPLAY_MATH_OPEN, INLINE_MATH_OPEN).replace(DISPLAY_MATH_CLOSE, INLINE_MATH_CLOSE)
            values.append(value)
            values.extend([""] * (_colspan(cell) - 1))
        if not any(values):
            continue
        values.extend([""] * (width - len(values)))
        markdown_rows.append("| " + " | ".join(values) + " |")
    if markdown_rows:
        separator = "| " + " | ".join(["---"] * width) + " |"
        blocks.append("\n".join([markdown_rows[0], separator, *markdown_rows[1:]]))


def _table_as_cell_text(block: str) -> str:
    """A nested Markdown table written on one line ("a: b; c: d") so it fits in its outer cell."""
    if not block.startswith("| "):
        return block
    rows = [line.strip().strip("|").strip() for line in block.split("\n") if not line.startswith("| ---")]
    return "; ".join(": ".join(cell.strip() for cell in row.split(" | ") if cell.strip()) for row in rows)


def _colspan(cell: LexborNode) -> int:
    value = cell.attributes.get("colspan") or "1"
    return min(int(value), MAX_COLSPAN) if value.isdigit() and int(value) > 0 else 1
