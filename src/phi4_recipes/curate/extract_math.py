"""Formulas for html_to_text: every rendering of a formula becomes a placeholder holding its TeX source.

MathJax scripts, KaTeX/MathJax-3 renderings, Wikipedia math, `<math>` MathML and LaTeX images all become
`$...$` / `$$...$$` in the output; the placeholders are private-use characters, which whitespace collapsing
leaves alone, and are swapped back by `restore_formulas` once the text is final.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborNode

from phi4_recipes.curate.mathml import mathml_to_latex

INLINE_MATH_OPEN, INLINE_MATH_CLOSE = "\ue000", "\ue001"
DISPLAY_MATH_OPEN, DISPLAY_MATH_CLOSE = "\ue002", "\ue003"
LINE_BREAK = "\ue004"
STRIPPED_CHARACTERS = re.compile("[\ue000-\ue004\u00ad]")
STRIPPED_MARKERS = ("\ue000", "\ue001", "\ue002", "\ue003", "\ue004")
# The same characters written as numeric references, which the parser would decode into our markers.
STRIPPED_REFERENCES = re.compile(r"&#(?:[xX]0*[eE]00[0-4]|0*5734[4-8]);")
MATH_PLACEHOLDER = re.compile("( ?)([\ue000\ue002])(\\d+)[\ue001\ue003]( ?)")
DISPLAYSTYLE = re.compile(r"^\{\\displaystyle\s*(.*)\}$", re.S)
MATH_SELECTOR = ("mjx-container, script[type^='math/tex'], script[type^='math/asciimath'], .MathJax_Preview, "
                 ".MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML, .katex, .mwe-math-element, math, "
                 "img.latex, img.tex, img[src*='latex.php'], img[src*='codecogs.com'], "
                 "img.mwe-math-fallback-image-inline")


@dataclass
class RenderState:
    """Formulas collected while rendering; the text holds numbered placeholders until the end."""

    formulas: list[str] = field(default_factory=list)

    def math(self, tex: str, display: bool) -> str:
        tex = DISPLAYSTYLE.sub(r"\1", tex.strip())
        self.formulas.append(tex.strip())
        index = len(self.formulas) - 1
        if display:
            return f"{DISPLAY_MATH_OPEN}{index}{DISPLAY_MATH_CLOSE}"
        return f"{INLINE_MATH_OPEN}{index}{INLINE_MATH_CLOSE}"


def strip_marker_characters(html: str) -> str:
    """Remove the page's own private-use characters (icon fonts) and soft hyphens before parsing."""
    # Both are rare: C-speed tests (isascii, substring) spare regex passes over most pages.
    if "\u00ad" in html or (not html.isascii() and any(marker in html for marker in STRIPPED_MARKERS)):
        html = STRIPPED_CHARACTERS.sub("", html)
    if "&#" in html and STRIPPED_REFERENCES.search(html) is not None:
        html = STRIPPED_REFERENCES.sub("", html)
    return html


def replace_math(body: LexborNode, state: RenderState) -> None:
    """Swap every formula rendering for a placeholder holding its TeX source."""
    if body.css_first(MATH_SELECTOR) is None:
        return  # most pages have no formula: one selector pass instead of seven
    for node in body.css("mjx-container"):
        math = node.css_first("math")
        display = node.attributes.get("display") == "true"
        _swap(node, state.math(_math_element_tex(math), display) if math is not None else "")
    for node in body.css("script[type^='math/tex'], script[type^='math/asciimath']"):
        display = "mode=display" in (node.attributes.get("type") or "")
        # Script bodies are raw text, but CMSs often entity-escape them anyway (&lt; for <).
        _swap(node, state.math(html_lib.unescape(node.text(deep=True) or ""), display))
    for node in body.css(".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML"):
        if is_attached(node):
            node.remove()
    for node in body.css(".katex-display, .katex"):
        if not is_attached(node):
            continue
        annotation = node.css_first("annotation[encoding='application/x-tex']")
        if annotation is not None:
            display = "katex-display" in (node.attributes.get("class") or "").split()
            _swap(node, state.math(annotation.text(deep=True) or "", display))
    for node in body.css(".mwe-math-element"):
        math = node.css_first("math")
        image = node.css_first("img")
        tex = math.attributes.get("alttext") if math is not None else None
        tex = tex or (image.attributes.get("alt") if image is not None else "") or ""
        display = node.css_first(".mwe-math-fallback-image-display") is not None or (
            math is not None and math.attributes.get("display") == "block")
        _swap(node, state.math(tex, display))
    for node in body.css("math"):
        if is_attached(node):
            display = node.attributes.get("display") == "block" or node.attributes.get("mode") == "display"
            _swap(node, state.math(_math_element_tex(node), display))
    for node in body.css("img.latex, img.tex, img[src*='latex.php'], img[src*='codecogs.com'], "
                         "img.mwe-math-fallback-image-inline"):
        tex = node.attributes.get("alt") or ""
        if tex:
            _swap(node, state.math(tex, "display" in (node.attributes.get("class") or "")))


def restore_formulas(text: str, state: RenderState) -> str:
    """Write each placeholder back as `$tex$` (inline) or `$$tex$$` on its own line (display)."""

    def formula(match: re.Match) -> str:
        before, kind, index, after = match.groups()
        tex = state.formulas[int(index)]
        if kind == DISPLAY_MATH_OPEN:
            return f"\n$${tex}$$\n" if tex else " "
        return f"{before}${tex}${after}" if tex else before or after

    return MATH_PLACEHOLDER.sub(formula, text) if state.formulas else text


def is_attached(node: LexborNode) -> bool:
    """False for nodes inside an already-removed subtree: they lose their path to <html>."""
    while node is not None:
        if node.tag == "html":
            return True
        node = node.parent
    return False


def _math_element_tex(math: LexborNode) -> str:
    annotation = math.css_first("annotation[encoding='application/x-tex'], annotation[encoding='TeX']")
    if annotation is not None and (annotation.text(deep=True) or "").strip():
        return annotation.text(deep=True)
    return math.attributes.get("alttext") or mathml_to_latex(math)


def _swap(node: LexborNode, replacement: str) -> None:
    if replacement:
        node.replace_with(replacement)
    else:
        node.remove()
