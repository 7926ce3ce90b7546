"""Multiple-choice answers: find which option letter a completion picked, and compare it with the key."""

from __future__ import annotations

import functools
import re
import string
from collections import deque

from phi4_recipes.verify.limits import completion_too_long
from phi4_recipes.verify.verdict import Verdict

DEFAULT_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro has ten options; MMLU and GPQA use the first four


@functools.lru_cache(maxsize=64)
def _patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    """Answer patterns from most to least explicit; the first pattern that matches decides.

    Each optional piece starts with a non-space and owns the spaces after it (possessively: nothing
    after a run of spaces can start with one), and "^" takes only the spaces of its own line:
    adjacent ``\\s*`` would backtrack polynomially on "answer" followed by spaces (300 spaces
    took over a minute) or on a run of blank lines.
    """
    option = f"[{re.escape(letters)}]"
    # The letter must stand alone: not followed by a word character, so "Because" is not "B".
    alone = rf"(?<![A-Za-z0-9])\(?({option})\)?(?![A-Za-z0-9])"
    return (
        # "The answer is (B)", "Final answer: **B**", "answer: B."
        re.compile(
            rf"answer\s*+(?:(?:is|:)\s*+)?(?:(?:option|choice)\s*+)?(?:[:\-]\s*+)?"
            rf"(?:[*_$\\{{(\[]++\s*+)?{alone}",
            re.IGNORECASE,
        ),
        re.compile(rf"\\boxed\{{\s*+(?:\\text\{{\s*+)?\(?({option})\)?\s*+\}}"),
        re.compile(rf"\*\*\s*+\(?({option})\)?[.:)]?\s*+\*\*"),  # "**B**", "**(B)**", "**B.**"
        re.compile(rf"(?:option|choice)\s++{alone}", re.IGNORECASE),
        # a line starting "B." or "(B)" or "B)"
        re.compile(rf"^[^\S\n]*+\(?({option})[.):](?:\s|$)", re.MULTILINE),
        re.compile(rf"\(({option})\)"),
    )


def _check_letters(letters: str) -> None:
    if not letters or any(letter not in string.ascii_uppercase for letter in letters):
        raise ValueError(f"letters must be upper-case A-Z, got {letters!r}")


def extract_choice(text: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """Return the option letter a completion chose, or None when it commits to none.

    Handles "The answer is (B)", "Answer: B", "**B**", ``\\boxed{B}``, "B." and a bare "B".
    When a pattern matches several times the last match wins (models restate and correct).

    Args:
        text (str): a model completion.
        letters (str): the valid option letters, upper case, e.g. ``"ABCD"``.

    Returns:
        str | None: an upper-case letter from ``letters``, or None.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the completion as str, got {type(text).__name__}")
    _check_letters(letters)
    bare = text.strip().strip("*_.:()[]$ \n")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    for pattern in _patterns(letters):
        last = deque(pattern.finditer(text), maxlen=1)  # keeps one match alive, not a list of all
        if last:
            return last[0].group(1).upper()
    return None


def choice_label(reference: str | int, letters: str = DEFAULT_LETTERS) -> str:
    """Normalise a dataset's answer key (a letter, "(B)", or a 0-based option index) to a letter.

    Args:
        reference (str | int): the answer key.
        letters (str): the valid option letters.
    """
    if isinstance(reference, bool):
        raise TypeError("answer key must be a letter or an option index, not a bool")
    if isinstance(reference, int):
        if not 0 <= reference < len(letters):
            raise ValueError(f"option index {reference} is outside 0..{len(letters) - 1}")
        return letters[reference]
    if isinstance(reference, str):
        label = reference.strip().strip("().").upper()
        if len(label) == 1 and label in letters:
            return label
        raise ValueError(f"answer key {reference!r} is not one of the letters {letters!r}")
    raise TypeError(f"answer key must be str or int, got {type(reference).__name__}")


def choice_verdict(prediction: str, reference: str | int, letters: str = DEFAULT_LETTERS) -> Verdict:
    """Whether the completion picked the keyed option, and if not, why.

    Args:
        prediction (str): a model completion.
        reference (str | int): the answer key (letter or 0-based index).
        letters (str): the valid option letters.

    Returns:
        Verdict: failed when the completion is longer than ``MAX_COMPLETION_CHARS`` (refused unread),
        commits to no option, or picks another one.
    """
    if not isinstance(prediction, str):
        raise TypeError(f"expected the completion as str, got {type(prediction).__name__}")
    _check_letters(letters)
    key = choice_label(reference, letters)
    too_long = completion_too_long(prediction)
    if too_long:
        return Verdict(False, too_long)
    picked = extract_choice(prediction, letters)
    if picked is None:
        return Verdict(False, "no option letter found")
    if picked != key:
        return Verdict(False, f"picked option {picked}; the key is {key}")
    return Verdict(True)


def choice_equal(prediction: str, reference: str | int, letters: str = DEFAULT_LETTERS) -> bool:
    """Whether the completion picked the keyed option (``choice_verdict`` without the reason).

    Args:
        prediction (str): a model completion.
        reference (str | int): the answer key (letter or 0-based index).
        letters (str): the valid option letters.
    """
    return choice_verdict(prediction, reference, letters).passed
