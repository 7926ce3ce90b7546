"""Bounds on what an oracle reads from a completion, checked before any parse, regex or sandbox.

Every oracle call runs on the host that drives training or evaluation, so the work a single
completion can cause there must be bounded before anything looks at its content: a completion
longer than ``MAX_COMPLETION_CHARS`` is wrong (no model answer needs a megabyte), and an extracted
answer longer than ``MAX_ANSWER_CHARS`` is never handed to a parser.
"""

MAX_COMPLETION_CHARS = 1_000_000
MAX_ANSWER_CHARS = 4_096


def completion_too_long(completion: str) -> str | None:
    """Return why an oracle refuses ``completion`` unread, or None when its length is within bounds.

    Args:
        completion (str): a model completion.

    Returns:
        str | None: e.g. "completion is 1200000 characters; oracles read at most 1000000".
    """
    if len(completion) > MAX_COMPLETION_CHARS:
        return f"completion is {len(completion)} characters; oracles read at most {MAX_COMPLETION_CHARS}"
    return None
