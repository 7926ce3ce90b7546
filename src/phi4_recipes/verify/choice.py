"""Multiple-choice answers: find which option letter a completion picked, and compare it with the key."""

from __future__ import annotations

import re
import string

DEFAULT_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro has ten options; MMLU and GPQA use the first four


def _patterns(letters: str) -> list[re.Pattern[str]]:
    """Answer patterns from most to least explicit; the first pattern that matches decides."""
    option = f"[{re.escape(letters)}]"
    # The letter must stand alone: not followed by a word character, so "Because" is not "B".
    alone = rf"(?<![A-Za-z0-9])\(?({option})\)?(?![A-Za-z0-9])"
    return [
        # "The answer is (B)", "Final answer: **B**", "answer: B."
        re.compile(
            rf"answer\s*(?:is|:)?\s*(?:option|choice)?\s*[:\-]?\s*[*_$\\{{(\[]*\s*{alone}", re.IGNORECASE
        ),
        re.compile(rf"\\boxed\{{\s*(?:\\text\{{)?\s*\(?({option})\)?\s*\}}"),
        re.compile(rf"\*\*\s*\(?({option})\)?[.:)]?\s*\*\*"),  # "**B**", "**(B)**", "**B.**"
        re.compile(rf"(?:option|choice)\s+{alone}", re.IGNORECASE),
        re.compile(rf"^\s*\(?({option})[.):](?:\s|$)", re.MULTILINE),  # a line starting "B." or "(B)" or "B)"
        re.compile(rf"\(({option})\)"),
    ]


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
    if not letters or any(letter not in string.ascii_uppercase for letter in letters):
        raise ValueError(f"letters must be upper-case A-Z, got {letters!r}")
    bare = text.strip().strip("*_.:()[]$ \n")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    for pattern in _patterns(letters):
        matches = pattern.findall(text)
        if matches:
            return matches[-1].upper()
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


def choice_equal(prediction: str, reference: str | int, letters: str = DEFAULT_LETTERS) -> bool:
    """Whether the completion picked the keyed option.

    Args:
        prediction (str): a model completion.
        reference (str | int): the answer key (letter or 0-based index).
        letters (str): the valid option letters.
    """
    return extract_choice(prediction, letters) == choice_label(reference, letters)
