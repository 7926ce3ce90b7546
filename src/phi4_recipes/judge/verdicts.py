"""Reading a verdict out of a judge's free-text reply.

Judges wrap, hedge, reason first and change their mind; the rule everywhere is: the *last* explicit
label wins, bracketed labels (``[[A]]``) beat "Verdict: A" lines, and a reply with no label is None
(the caller retries once, then records it as unparseable) rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PAIRWISE_VERDICTS = ("A", "B", "tie")

_BRACKETED = re.compile(r"\[\[\s*([^\[\]]{1,16}?)\s*\]\]")
# The label may sit in parentheses or single brackets: SmolLM2-135M ended a judgement "The answer is: [A]".
_DECLARED = re.compile(r"(?:final\s+)?(?:verdict|answer|decision|winner|choice|grade)\s*(?:is)?\s*[:=\-]?\s*\**\s*"
                       r"[(\[]?\s*([A-Za-z]+)\b", re.IGNORECASE)
# Arena-Hard style comparisons, read as the pairwise verdict they imply.
_COMPARISON = {"A>>B": "A", "A>B": "A", "B<A": "A", "B<<A": "A", "A=B": "tie", "B=A": "tie",
               "B>>A": "B", "B>A": "B", "A<B": "B", "A<<B": "B"}
_TIE_WORDS = {"tie", "tied", "draw", "equal", "same", "c"}


def parse_choice(reply: str, choices: Sequence[str]) -> str | None:
    """The last of `choices` the reply commits to (case-insensitive), or None.

    Looks, in order, at ``[[label]]`` brackets, then "verdict/answer/winner: label" declarations, then a
    reply that is nothing but the label. Returns the spelling given in `choices`.
    """
    by_key = {c.lower(): c for c in choices}
    for pattern in (_BRACKETED, _DECLARED):
        found = [by_key[m.lower()] for m in pattern.findall(reply) if m.lower() in by_key]
        if found:
            return found[-1]
    bare = reply.strip().strip("*.()[]\"' ").lower()
    return by_key.get(bare)


def parse_pairwise_verdict(reply: str) -> str | None:
    """'A', 'B' or 'tie' from a pairwise judge reply, or None when it gives no verdict.

    Accepts ``[[A]]`` / ``[[B]]`` / ``[[tie]]`` (this package's rubrics), Arena-Hard comparisons
    (``[[A>>B]]``, ``[[A=B]]``), and "Verdict: B" lines; tie synonyms (draw, equal, C) count as a tie.
    """
    verdicts = []
    for label in _BRACKETED.findall(reply):
        label = label.replace(" ", "")
        verdicts.append(_COMPARISON.get(label.upper()) or _pairwise_word(label))
    verdicts = [v for v in verdicts if v]
    if verdicts:
        return verdicts[-1]
    declared = [_pairwise_word(word) for word in _DECLARED.findall(reply)]
    declared = [v for v in declared if v]
    if declared:
        return declared[-1]
    return _pairwise_word(reply.strip().strip("*.()[]\"' "))


def _pairwise_word(word: str) -> str | None:
    word = word.strip().lower()
    if word in ("a", "assistant a", "response a"):
        return "A"
    if word in ("b", "assistant b", "response b"):
        return "B"
    return "tie" if word in _TIE_WORDS else None
