"""Corruption filter step."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate.corruption import CorruptionThresholds, corruption_reason


class CorruptionFilter(BaseFilter):
    """Drop garbled, repetitive or spammy text; the reason names the failed check (see `corruption_reason`)."""

    name = "🧪 corruption"

    def __init__(self, thresholds: CorruptionThresholds | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.thresholds = thresholds or CorruptionThresholds()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reason = corruption_reason(doc.text, self.thresholds)
        return (False, reason) if reason else True
