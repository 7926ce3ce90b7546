"""Exact-match answers (SimpleQA-, DROP-, TriviaQA-style short answers) after light normalisation."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from phi4_recipes.verify.answers import extract_answer_phrase, extract_boxed

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and English articles, and collapse whitespace.

    Args:
        text (str): a short answer.
    """
    text = text.casefold().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str | Sequence[str], *, normalize: bool = True) -> bool:
    """Whether a completion states one of the reference answers exactly.

    The completion matches if its whole text, its last ``\\boxed{}`` or its "answer is ..." phrase
    equals a reference, so both bare answers and explained ones are judged.

    Args:
        prediction (str): a model completion.
        reference (str | Sequence[str]): the accepted answer or answers.
        normalize (bool): compare ``normalize_answer`` forms; otherwise stripped strings.

    Returns:
        bool: True when some candidate equals some accepted answer.
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
    candidates = [prediction, extract_boxed(prediction), extract_answer_phrase(prediction)]
    return any(candidate is not None and canonical(candidate) in accepted for candidate in candidates)
