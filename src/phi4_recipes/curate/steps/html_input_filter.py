"""Drop documents that are not worth parsing as HTML, each with its reason (before the extractor step)."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate.html_input import DEFAULT_MAX_HTML_BYTES, bad_input_reason


class HtmlInputFilter(BaseFilter):
    """Drop empty, oversized and binary documents as `dropped_empty`, `dropped_too_large`, `dropped_binary`.

    This runs in the pipeline's own process, so the reasons reach datatrove's stats; the extractor after it
    runs in a sandbox process, where only datatrove's own counters (timeout, errors, dropped) are kept.

    Args:
        max_chars (int): documents whose HTML is longer are dropped as "too_large".
    """

    name = "🚧 HTML input check"

    def __init__(self, max_chars: int = DEFAULT_MAX_HTML_BYTES, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.max_chars = max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reason = bad_input_reason(doc.text, self.max_chars)
        if reason:
            return False, reason
        doc.metadata["html_chars"] = len(doc.text)
        return True
