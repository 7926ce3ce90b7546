"""An oracle's verdict: pass or fail, and when it fails, why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Whether a completion is correct, with the reason when it is not.

    Attributes:
        passed (bool): the completion is correct.
        reason (str | None): why it is not (``"no final answer found"``, ``"completion is 2000000
            characters; oracles read at most 1000000"``...); None when it passed.
    """

    passed: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.passed
