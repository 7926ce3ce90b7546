"""HTML -> text as a datatrove extractor, so datatrove's per-page timeout, sandbox and stats apply."""

from __future__ import annotations

from datatrove.pipeline.extractors.base import BaseExtractor

from phi4_recipes.curate.extract import html_to_text

# datatrove's sandbox needs a finite deadline; "no limit" is one day per page.
NO_LIMIT_S = 86_400.0


class HtmlExtractStep(BaseExtractor):
    """Replace each document's HTML with `html_to_text` output.

    datatrove runs `extract` in a sandbox process that is restarted after a timeout or a crash, and counts
    `extracted`, `timeout`, `broken_process`, `clean_error` and `dropped` (pages with no text).

    Args:
        timeout_s (float | None): per-page limit in seconds; None means no limit.
    """

    name = "📐 html_to_text"

    def __init__(self, timeout_s: float | None = 5.0):
        super().__init__(timeout=NO_LIMIT_S if timeout_s is None else timeout_s)

    def extract(self, text: str) -> str:
        return html_to_text(text)
