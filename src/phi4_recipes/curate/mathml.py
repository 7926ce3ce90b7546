"""Presentation MathML -> LaTeX, for pages that ship `<math>` without a TeX annotation.

Only the presentation elements that real pages use are covered (mi, mn, mo, mrow, mfrac, msup, msub,
msubsup, msqrt, mroot, mover, munder, munderover, mtext, mtable, mfenced, ...); unknown elements fall back
to their children, so the output never loses symbols even when it loses some structure.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

# Unicode operators and identifiers that LaTeX spells as commands.
SYMBOL_TO_LATEX = {
    "∑": r"\sum", "∏": r"\prod", "∫": r"\int", "∮": r"\oint", "∂": r"\partial", "∇": r"\nabla",
    "∞": r"\infty", "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div", "·": r"\cdot", "⋅": r"\cdot",
    "∘": r"\circ", "−": "-", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq", "≈": r"\approx", "≡": r"\equiv",
    "∼": r"\sim", "≅": r"\cong", "∝": r"\propto", "→": r"\to", "←": r"\leftarrow", "↦": r"\mapsto",
    "⇒": r"\Rightarrow", "⇔": r"\Leftrightarrow", "⟹": r"\implies", "∈": r"\in", "∉": r"\notin",
    "⊂": r"\subset", "⊆": r"\subseteq", "⊃": r"\supset", "∪": r"\cup", "∩": r"\cap", "∅": r"\emptyset",
    "∀": r"\forall", "∃": r"\exists", "¬": r"\neg", "∧": r"\wedge", "∨": r"\vee", "⊕": r"\oplus",
    "⊗": r"\otimes", "⟨": r"\langle", "⟩": r"\rangle", "…": r"\ldots", "⋯": r"\cdots", "′": "'",
    "{": r"\{", "}": r"\}", "‖": r"\|", "ℝ": r"\mathbb{R}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}",
    "ℂ": r"\mathbb{C}", "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon",
    "ϵ": r"\epsilon", "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma",
    "τ": r"\tau", "υ": r"\upsilon", "φ": r"\phi", "ϕ": r"\phi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi", "Π": r"\Pi",
    "Σ": r"\Sigma", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
    "\u2061": "", "\u2062": "", "\u2063": "", "\u2064": "",  # invisible function application / times
}

FUNCTION_NAMES = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "exp", "lim", "max", "min", "sup", "inf", "det", "dim", "ker", "gcd", "deg", "arg",
}

ACCENTS = {"^": r"\hat", "ˆ": r"\hat", "¯": r"\bar", "‾": r"\overline", "→": r"\vec", "⃗": r"\vec",
           "~": r"\tilde", "˜": r"\tilde", "˙": r"\dot", "¨": r"\ddot"}

# Operators whose limits LaTeX writes as plain sub/superscripts (\sum_{i=1}^{n}).
TRAILING_COMMAND = re.compile(r"\\[A-Za-z]+$")
BIG_OPERATORS = {r"\sum", r"\prod", r"\int", r"\oint", r"\lim", r"\max", r"\min", r"\sup", r"\inf"}
# Token elements: their text is one identifier, number, operator or run of text.
TOKEN_TAGS = {"mi", "mn", "mo", "ms", "mtext", "mspace"}


def _symbols(text: str) -> str:
    text = text.strip()
    if text in SYMBOL_TO_LATEX:
        return SYMBOL_TO_LATEX[text]
    return "".join(SYMBOL_TO_LATEX.get(ch, ch) for ch in text)


def _group(latex: str) -> str:
    """Braces for a sub/superscript argument; a single character needs none."""
    return latex if len(latex) == 1 else "{" + latex + "}"


def _element_children(node: LexborNode) -> list[LexborNode]:
    return [child for child in node.iter(include_text=False)]


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        # A command followed by a letter needs a space (\alpha x, not \alphax).
        if part and part[0].isalpha() and TRAILING_COMMAND.search(out):
            out += " "
        out += part
    return out


def mathml_to_latex(node: LexborNode) -> str:
    """Convert a `<math>` element (or any MathML subtree) to a LaTeX string.

    Args:
        node (LexborNode): a `<math>` element or one of its descendants.

    Returns:
        str: LaTeX without surrounding `$` delimiters.
    """
    return _convert(node).strip()


def _convert(node: LexborNode) -> str:
    tag = node.tag
    if tag == "-text":
        return _symbols(node.text_content or "")
    if tag in TOKEN_TAGS:
        return _token(node, tag)
    if tag in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    kids = _element_children(node)
    args = [_convert(kid) for kid in kids]
    if tag == "semantics":
        return args[0] if args else ""
    if tag == "mfenced":
        opening = node.attributes.get("open") or "("
        closing = node.attributes.get("close") or ")"
        separator = (node.attributes.get("separators") or ",").strip()[:1]
        return _symbols(opening) + separator.join(args) + _symbols(closing)
    if tag == "mtable":
        rows = []
        for row in kids:
            cells = [_convert(cell) for cell in _element_children(row)]
            rows.append(" & ".join(cells))
        return r"\begin{matrix}" + r" \\ ".join(rows) + r"\end{matrix}"
    laid_out = _layout(node, tag, kids, args)
    # math, mrow, mstyle, mpadded, menclose, merror and anything unknown: keep the children in order.
    return laid_out if laid_out is not None else _join(args)


def _token(node: LexborNode, tag: str) -> str:
    """Identifiers, numbers, operators and text: one token each."""
    text = (node.text(deep=True) or "").strip()
    if tag == "mi":
        if text in FUNCTION_NAMES:
            return "\\" + text
        if len(text) > 1 and text.isalpha() and text.isascii():
            return r"\mathrm{" + text + "}"
        return _symbols(text)
    if tag == "mtext":
        return r"\text{" + text + "}" if text else " "
    if tag == "mspace":
        return " "
    return "\\" + text if text in FUNCTION_NAMES else _symbols(text)


def _layout(node: LexborNode, tag: str, kids: list[LexborNode], args: list[str]) -> str | None:
    """Fractions, roots, scripts, over/under marks; None when `tag` is none of them (or has the wrong arity)."""
    if tag == "mfrac" and len(args) == 2:
        if node.attributes.get("linethickness") in ("0", "0px", "0em"):
            return r"\binom{" + args[0] + "}{" + args[1] + "}"
        return r"\frac{" + args[0] + "}{" + args[1] + "}"
    if tag == "msqrt":
        return r"\sqrt{" + _join(args) + "}"
    if tag == "mroot" and len(args) == 2:
        return r"\sqrt[" + args[1] + "]{" + args[0] + "}"
    if tag == "msup" and len(args) == 2:
        return args[0] + "^" + _group(args[1])
    if tag == "msub" and len(args) == 2:
        return args[0] + "_" + _group(args[1])
    if tag in ("msubsup", "munderover") and len(args) == 3:
        return args[0] + "_" + _group(args[1]) + "^" + _group(args[2])
    if tag == "mover" and len(args) == 2:
        if args[0] in BIG_OPERATORS:
            return args[0] + "^" + _group(args[1])
        accent = ACCENTS.get((kids[1].text(deep=True) or "").strip())
        if accent:
            return accent + "{" + args[0] + "}"
        return r"\overset{" + args[1] + "}{" + args[0] + "}"
    if tag == "munder" and len(args) == 2:
        if args[0] in BIG_OPERATORS:
            return args[0] + "_" + _group(args[1])
        return r"\underset{" + args[1] + "}{" + args[0] + "}"
    return None
