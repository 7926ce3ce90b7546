"""Pull the final answer (or the final code block) out of a free-form model completion.

Pure string functions, no sympy: they run in the calling process, and only the
extracted answer is shipped to the math-verify workers.
"""

from __future__ import annotations

import re

_BOXED_COMMANDS = ("\\boxed", "\\fbox")

# "The answer is 5", "Final answer: 5", "**Answer:** 5". The last occurrence wins because
# models often restate a wrong intermediate "answer is" before correcting it.
_ANSWER_PHRASE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:\*\*)?\s*(?:is|:|=)\s*(?:\*\*)?[:\s]*", re.IGNORECASE
)

# Integers with thousands separators, decimals, simple fractions and percentages.
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?\s*\\?%?")

_CODE_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def _read_braced(text: str, start: int) -> str | None:
    """Return the content of the brace group opening at ``text[start]``, or None if unbalanced.

    Args:
        text (str): the whole string.
        start (int): index of an opening ``{``.
    """
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2  # an escaped brace such as \{ does not open or close a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
        index += 1
    return None


def extract_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    ``\\boxed 5`` without braces yields the next whitespace-delimited token.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the boxed content, stripped, or None when there is no complete box.
    """
    best: tuple[int, str] | None = None
    for command in _BOXED_COMMANDS:
        position = text.rfind(command)
        while position != -1:
            after = position + len(command)
            rest = text[after:]
            stripped = rest.lstrip()
            content: str | None
            if stripped.startswith("{"):
                content = _read_braced(text, after + len(rest) - len(stripped))
            elif rest[:1].isspace() and stripped:
                content = stripped.split()[0].rstrip(".$")
            else:
                content = None  # e.g. "\boxedfoo" or a box cut off by max_new_tokens
            if content is not None:
                if best is None or position > best[0]:
                    best = (position, content.strip())
                break
            position = text.rfind(command, 0, position)
    return best[1] if best else None


def _strip_decorations(answer: str) -> str:
    """Drop markdown emphasis, math delimiters and a sentence-final period around an answer."""
    answer = answer.strip()
    previous = None
    while previous != answer:
        previous = answer
        answer = answer.strip().strip("*").strip()
        for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
                answer = answer[len(left) : len(answer) - len(right)]
        # A trailing "." ends the sentence; "0.5" keeps its point because a digit follows it.
        if answer.endswith(".") and not answer.endswith("..."):
            answer = answer[:-1]
    return answer.strip()


def extract_answer_phrase(text: str) -> str | None:
    """Return what follows the last "answer is" / "answer:" phrase, up to the end of its line.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the stated answer without markdown or ``$`` delimiters, or None.
    """
    matches = list(_ANSWER_PHRASE.finditer(text))
    for match in reversed(matches):
        rest = text[match.end() :]
        lines = [line for line in rest.split("\n") if line.strip()]
        if not lines:
            continue
        answer = _strip_decorations(lines[0])
        if answer:
            return answer
    return None


def extract_last_number(text: str) -> str | None:
    """Return the last number in ``text`` (integer, decimal, ``a/b`` fraction or percentage).

    Args:
        text (str): a model completion.

    Returns:
        str | None: the number as written (thousands separators kept), or None.
    """
    matches = _NUMBER.findall(text)
    return matches[-1].strip() if matches else None


def extract_final_answer(text: str) -> str | None:
    """Return a completion's final answer: last ``\\boxed{}``, else "answer is ...", else last number.

    Args:
        text (str): a model completion.

    Returns:
        str | None: the answer string (LaTeX or plain), or None when nothing answer-like is found.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the completion as str, got {type(text).__name__}")
    for extractor in (extract_boxed, extract_answer_phrase, extract_last_number):
        answer = extractor(text)
        if answer:
            return answer
    return None


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


def extract_code(text: str, language: str = "python") -> str:
    """Return the code a completion proposes: its last fenced block tagged ``language`` (or untagged).

    Falls back to the whole text when there is no fence, since many code datasets hold bare programs.

    Args:
        text (str): a model completion.
        language (str): the fence tag to prefer, e.g. ``"python"``.
    """
    blocks = _CODE_FENCE.findall(text)
    tagged = [
        body
        for tag, body in blocks
        if tag.lower() in (language.lower(), "py" if language == "python" else language)
    ]
    untagged = [body for tag, body in blocks if not tag]
    for candidates in (tagged, untagged):
        if candidates:
            return candidates[-1]
    return text
