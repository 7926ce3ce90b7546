"""Exact-match answers (SimpleQA-, DROP-, TriviaQA-style short answers) after light normalisation."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from phi4_recipes.verify.answers import extract_answer_phrase, extract_boxed
from phi4_recipes.verify.limits import completion_too_long
from phi4_recipes.verify.verdict import Verdict

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, and collapse whitespace.

    Args:
        text (str): a short answer.
    """
    text = text.casefold().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    # " ".join(text.split()) without a list of every word (a megabyte of "ab ab" is 20 MB of them).
    return _SPACES.sub(" ", text).strip()


def exact_verdict(prediction: str, reference: str | Sequence[str], *, normalize: bool = True) -> Verdict:
    """Whether a completion states one of the reference answers exactly, and if not, why.

    The completion matches if its whole text, its last ``\\boxed{}`` or its "answer is ..." phrase
    equals a reference, so both bare answers and explained ones are judged. A completion longer
    than ``MAX_COMPLETION_CHARS`` is refused unread.

    Args:
        prediction (str): a model completion.
        reference (str | Sequence[str]): the accepted answer or answers.
        normalize (bool): compare ``normalize_answer`` forms; otherwise stripped strings.

    Returns:
        Verdict: passed when some candidate equals some accepted answer.

    Raises:
        TypeError: ``prediction`` is not a str.
        ValueError: no reference, or one that is empty after normalisation.
    """
    if not isinstance(prediction, str):
        raise TypeError(f"expected the completion as str, got {type(prediction).__name__}")
    references = [reference] if isinstance(reference, str) else list(reference)
    if not references or not all(isinstance(item, str) for item in references):
        raise ValueError("reference must be a non-empty str or a non-empty list of str")
    canonical = normalize_answer if normalize else str.strip
    accepted = {canonical(item) for item in references}
    if "" in accepted:
        raise ValueError("a reference answer is empty after normalisation")
    too_long = completion_too_long(prediction)
    if too_long:
        return Verdict(False, too_long)
    candidates = [prediction, extract_boxed(prediction), extract_answer_phrase(prediction)]
    if any(candidate is not None and canonical(candidate) in accepted for candidate in candidates):
        return Verdict(True)
    if candidates[1] is None and candidates[2] is None:
        return Verdict(False, "no boxed or stated answer, and the whole text matches no accepted answer")
    return Verdict(False, "not equal to any accepted answer")


def exact_match(prediction: str, reference: str | Sequence[str], *, normalize: bool = True) -> bool:
    """Whether a completion states one of the reference answers exactly; ``exact_verdict`` without the reason.

    Args:
        prediction (str): a model completion.
        reference (str | Sequence[str]): the accepted answer or answers.
        normalize (bool): compare ``normalize_answer`` forms; otherwise stripped strings.

    Returns:
        bool: True when some candidate equals some accepted answer.
    """
    return exact_verdict(prediction, reference, normalize=normalize).passed
