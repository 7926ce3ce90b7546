"""Pull the final answer (or the final code block) out of a free-form model completion.

Pure string functions, no sympy: they run in the calling process, and only the
extracted answer is shipped to the math-verify workers.

A completion is untrusted text of up to ``MAX_COMPLETION_CHARS`` characters, so every function
here does work linear in its input: no regex has two adjacent quantifiers that can share
characters (they backtrack quadratically when the match fails), no scan restarts from each match,
and no per-match copy of the rest of the text is made.
"""

from __future__ import annotations

import re
from array import array
from collections import deque
from itertools import accumulate

from phi4_recipes.verify.limits import MAX_COMPLETION_CHARS

# "\boxed{...}" and "\boxed 5". A command, its spaces and its "{" hold no second backslash, so
# matches never overlap and each regex finds every box of its form; "\boxedfoo" is neither.
_BRACED_BOX = re.compile(r"\\(?:boxed|fbox)\s*+\{")
_TOKEN_BOX = re.compile(r"\\(?:boxed|fbox)\s++(?=[^\s{])")
_TOKEN = re.compile(r"\S+")
# A backslash escapes the next character (\{ opens no group); only escaped braces and backslashes
# can change the brace count, so only those pairs are blanked before counting.
_ESCAPED_BRACE = re.compile(rb"\\[\\{}]")
# Depth change per byte, read as a signed byte: "{" +1, "}" -1 (255), anything else 0.
_BRACE_STEP = bytes(1 if byte == ord("{") else 255 if byte == ord("}") else 0 for byte in range(256))

# "The answer is 5", "Final answer: 5", "**Answer:** 5". The last occurrence wins because
# models often restate a wrong intermediate "answer is" before correcting it. Each optional piece
# starts with a non-space, so no two quantifiers compete for the same whitespace, and the
# possessive ``*+`` never walks back through a long run of spaces after a failed "is".
_ANSWER_PHRASE = re.compile(
    r"(?:final\s++answer|answer)\s*+(?:\*\*\s*+)?(?:is|:|=)\s*+(?:(?:\*\*|:)[:\s]*+)?", re.IGNORECASE
)

# Integers with thousands separators, decimals, simple fractions and percentages; group 1 is the
# number without the trailing percent sign. Nothing after a run can fail, so the possessive ``++``
# matches what ``+`` would, without the regex engine stacking one backtrack point per ",000"; the
# leading lookahead lets the engine skip non-numbers by character class (4x faster on prose).
_NUMBER = re.compile(r"(?=[-\d])(-?(?:\d{1,3}(?:,\d{3})++|\d++)(?:\.\d++)?(?:\s*+/\s*+\d++)?)\s*+\\?%?")
# How far back on its line the last-number fallback looks for a second value ("1 to 100").
_RANGE_LOOKBACK = 80
_MAX_CONNECTOR = 40
# Rounds of "$...$" / "**" / "\(...\)" peeling before a stated answer is taken as it stands.
_MAX_DECORATION_ROUNDS = 256
# First and last characters a round can peel ("" for an empty answer, which has nothing to peel).
_DECORATION_STARTS = frozenset("*$\\")
_DECORATION_ENDS = frozenset("*.")

# Words and symbols that, alone between two numbers, offer a second value instead of one answer.
_CONNECTORS = frozenset(
    {
        "or", "alternatively", "or alternatively", "or possibly", "or maybe", "or perhaps",
        "|", "\\lor", "\\vee", "\u2228", "\\\\",
        "...", "\u2026", "\u22ef", "\\ldots", "\\dots", "\\cdots", "to", "\u2013", "--",
    }
)
# LaTeX and markdown that decorate a value without changing it: \text{ or }, $...$, \( \), \quad.
_DECORATION = re.compile(
    r"\\(?:text|mathrm|textbf|textit|mbox|operatorname)\s*+\{|\\[{}()\[\],;!%]|\\q?quad(?![A-Za-z])|[{}$]"
)
# "$42$ (or $43$)": "$ (or $" is "or". Only ever run on a gap of at most _MAX_CONNECTOR characters.
_CONNECTOR_EDGES = re.compile(r"^[\s(),*%]+|[\s(),*%]+$")
_SPACE_RUN = re.compile(r"\s+")

# Markers of an answer that offers more than one value, by kind (see ``multiple_value_markers``).
_OR_WORD = re.compile(r"(?<![A-Za-z\\])(?:or|either|alternatively)(?![A-Za-z])", re.IGNORECASE)
_OR_SYMBOL = re.compile(r"\\(?:lor|vee)(?![A-Za-z])|\u2228")
_ROW_BREAK = re.compile(r"\\(?:(\\)|(begin)(?![A-Za-z])|(end)(?![A-Za-z]))?")
_RANGE = re.compile(
    r"(?:\d|(?<![A-Za-z\\])[A-Za-z])[\s,()]*+"
    r"(?:\.\.\.|\u2026|\u22ef|\\(?:ldots|dots|cdots)(?![A-Za-z])|(?<![A-Za-z\\])to(?![A-Za-z])|\u2013|--)"
    r"[\s,()]*+(?:[-+]?\d|[A-Za-z](?![A-Za-z]))"
)


def _brace_depths(text: str, start: int) -> array:
    """Return the brace depth after each character of ``text[start:]``, counting from 0 at ``start``.

    Built by C-level iterators (encode, translate, accumulate over signed bytes): a megabyte of
    braces costs 0.2 s where a Python loop over them took a second. ``start`` must be a box's "{"
    (never preceded by a backslash), so escapes pair up here as they do from any earlier point.
    Non-ASCII characters become "?": only ASCII braces and backslashes count.
    """
    steps = _ESCAPED_BRACE.sub(b"  ", text[start:].encode("ascii", "replace")).translate(_BRACE_STEP)
    return array("i", accumulate(array("b", steps)))


def extract_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    ``\\boxed 5`` without braces yields the next whitespace-delimited token. A box whose braces
    never close (e.g. cut off by max_new_tokens) is skipped in favour of an earlier one.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the boxed content, stripped, or None when there is no complete box.
    """
    braces = array("q", (end - 1 for end in map(re.Match.end, _BRACED_BOX.finditer(text))))
    tokens = deque(map(re.Match.end, _TOKEN_BOX.finditer(text)), maxlen=1)
    last_token = tokens[0] if tokens else -1
    # From the last braced box back: once every later box is known to stay open, a box closes iff
    # its depth falls back within its own segment (up to the next box brace), since after that
    # point the later box's open group keeps the depth above it. So each segment is read once.
    depths = None
    segment_end = len(text)
    for brace in reversed(braces):
        if brace < last_token:
            break  # a later "\boxed 5" wins (brace and token both lie between their command and the next)
        if text.find("}", brace, segment_end) != -1:
            if depths is None:
                depths = _brace_depths(text, braces[0])
            low, high = brace - braces[0], segment_end - braces[0]
            outside = depths[low] - 1
            if min(depths[low:high]) <= outside:
                close = braces[0] + depths.index(outside, low, high)
                return text[brace + 1 : close].strip()
        segment_end = brace
    if last_token >= 0:
        return _TOKEN.match(text, last_token).group().rstrip(".$").strip()
    return None


def _strip_decorations(answer: str) -> str:
    """Drop markdown emphasis, math delimiters and a sentence-final period around an answer.

    Stops after ``_MAX_DECORATION_ROUNDS`` rounds: a round may peel as little as one "$" pair,
    so "$$$...$$$" would otherwise copy a long line once per pair. No real answer wears that many
    layers; what is left after them is returned as it stands.
    """
    answer = answer.strip()
    if answer[:1] not in _DECORATION_STARTS and answer[-1:] not in _DECORATION_ENDS:
        return answer  # the common case: nothing to peel, so skip the rounds
    for _ in range(_MAX_DECORATION_ROUNDS):
        previous = answer
        answer = answer.strip().strip("*").strip()
        for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
                answer = answer[len(left) : len(answer) - len(right)]
        # A trailing "." ends the sentence; "0.5" keeps its point because a digit follows it.
        if answer.endswith(".") and not answer.endswith("..."):
            answer = answer[:-1]
        if answer == previous:
            break
    return answer.strip()


def extract_answer_phrase(text: str) -> str | None:
    """Return what follows the last "answer is" / "answer:" phrase, up to the end of its line.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the stated answer without markdown or ``$`` delimiters, or None.
    """
    ends = array("q", map(re.Match.end, _ANSWER_PHRASE.finditer(text)))
    for end in reversed(ends):
        # The phrase swallows the spaces and newlines after it, so the rest of its line is the
        # first non-blank line after it, or there is nothing left at all.
        if end == len(text):
            continue
        line_end = text.find("\n", end)
        answer = _strip_decorations(text[end : len(text) if line_end == -1 else line_end])
        if answer:
            return answer
    return None


def _last_number_match(text: str, start: int = 0, end: int | None = None) -> re.Match[str] | None:
    """Return the last ``_NUMBER`` match in ``text[start:end]``, keeping only one match alive."""
    last = deque(_NUMBER.finditer(text, start, len(text) if end is None else end), maxlen=1)
    return last[0] if last else None


def extract_last_number(text: str) -> str | None:
    """Return the last number in ``text`` (integer, decimal, ``a/b`` fraction or percentage).

    Args:
        text (str): a model completion.

    Returns:
        str | None: the number as written (thousands separators kept), or None.
    """
    last = _last_number_match(text)
    return last.group().strip() if last else None


def _last_number_answer(text: str) -> str | None:
    """The last-number fallback: the last number, widened to "a to b" when its line offers two values.

    A bare "1...100" or "$42$ (alternatively $43$)" ends in a number, but the grader must see both
    values to mark the hedge, so the answer then spans from the previous number on the same line.
    """
    last = _last_number_match(text)
    if last is None:
        return None
    line_start = text.rfind("\n", max(0, last.start() - _RANGE_LOOKBACK), last.start()) + 1
    window = max(line_start, last.start() - _RANGE_LOOKBACK)
    previous = _last_number_match(text, window, last.start())
    if previous is not None and last.start() - previous.end(1) <= _MAX_CONNECTOR:
        connector = _CONNECTOR_EDGES.sub("", _DECORATION.sub(" ", text[previous.end(1) : last.start()]))
        if _SPACE_RUN.sub(" ", connector).lower() in _CONNECTORS:
            return text[previous.start() : last.end()].strip()
    return last.group().strip()


def extract_final_answer(text: str) -> str | None:
    """Return a completion's final answer: last ``\\boxed{}``, else "answer is ...", else last number.

    The last-number fallback keeps a second value on the same line ("1 to 100", "42 or 43") so
    that ``multiple_value_markers`` can see the hedge.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the answer string (LaTeX or plain), or None when nothing answer-like is found
        or the completion is longer than ``MAX_COMPLETION_CHARS`` (too long to be read at all).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the completion as str, got {type(text).__name__}")
    if len(text) > MAX_COMPLETION_CHARS:
        return None
    for extractor in (extract_boxed, extract_answer_phrase, _last_number_answer):
        answer = extractor(text)
        if answer:
            return answer
    return None


def multiple_value_markers(answer: str) -> frozenset[str]:
    """Return the kinds of marker by which an answer offers more than one value.

    A strict grader marks "42 (or 43)" wrong even when 43 is right. The kinds: ``"or"`` (the words
    or / either / alternatively, ``\\lor``, ``\\vee``), ``"|"`` (an odd number of bare pipes; paired
    ones are absolute values), ``"\\\\"`` (a LaTeX row break between two values outside a
    ``\\begin..\\end`` environment, where a matrix or cases holds one value) and ``"range"`` (two
    values joined by an ellipsis, "to" or an en dash).

    Args:
        answer (str): an extracted answer.

    Returns:
        frozenset[str]: the kinds found; empty for an answer that offers one value.
    """
    kinds = set()
    plain = _DECORATION.sub(" ", answer)
    if _OR_WORD.search(plain) or _OR_SYMBOL.search(answer):
        kinds.add("or")
    if (answer.count("|") - answer.count("\\|")) % 2:  # "\\|" is a norm bar, not a pipe
        kinds.add("|")
    if _row_break_outside_environment(answer):
        kinds.add("\\\\")
    if _RANGE.search(plain):
        kinds.add("range")
    return frozenset(kinds)


def _row_break_outside_environment(answer: str) -> bool:
    """Whether ``answer`` has a ``\\\\`` with text on both sides and no open ``\\begin`` around it."""
    content = answer.strip()
    depth = 0
    for match in _ROW_BREAK.finditer(content):
        if match.group(2):
            depth += 1
        elif match.group(3):
            depth = max(0, depth - 1)
        elif match.group(1) and depth == 0 and 0 < match.start() and match.end() < len(content):
            return True
    return False


def reference_answer(reference: str) -> str:
    """Return the gold answer from a dataset reference: its last box if it has one, else the whole string.

    References are either bare answers ("3/4") or worked solutions ending in a box (MATH);
    falling back to the last number would turn "x^2+1" into "1", so that rule is not used here.

    Args:
        reference (str): the dataset's answer field.
    """
    if not isinstance(reference, str):
        raise TypeError(f"expected the reference answer as str, got {type(reference).__name__}")
    boxed = extract_boxed(reference)
    answer = boxed if boxed is not None else _strip_decorations(reference)
    if not answer:
        raise ValueError("reference answer is empty")
    return answer


_FENCE_TAG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")


def extract_code(text: str, language: str = "python") -> str:
    """Return the code a completion proposes: its last fenced block tagged ``language`` (or untagged).

    Falls back to the whole text when there is no fence, since many code datasets hold bare programs.
    A fence opens with a line starting "```" and closes at the next "```"; fences are paired left
    to right with ``str.find``, so an unclosed fence costs one scan, not one per backtick.

    Args:
        text (str): a model completion.
        language (str): the fence tag to prefer, e.g. ``"python"``.
    """
    wanted = (language.lower(), "py" if language == "python" else language)
    last_tagged: tuple[int, int] | None = None
    last_untagged: tuple[int, int] | None = None
    position = 0
    while True:
        opening = text.find("```", position)
        if opening == -1:
            break
        header_end = text.find("\n", opening + 3)
        if header_end == -1:
            break  # no later fence has a header line either
        closing = text.find("```", header_end + 1)
        if closing == -1:
            break  # no later fence has a close either
        tag = _FENCE_TAG.match(text, opening + 3, header_end).group(1)
        if tag.lower() in wanted:
            last_tagged = (header_end + 1, closing)
        if not tag:
            last_untagged = (header_end + 1, closing)
        position = closing + 3
    for block in (last_tagged, last_untagged):
        if block is not None:
            return text[block[0] : block[1]]
    return text
