"""Language identification step."""

from __future__ import annotations

import json

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate.langid import (
    detect_language,
    detect_paragraph_languages,
    language_shares,
    route_language,
)


class LanguageIdFilter(BaseFilter):
    """Tag language (whole document and per paragraph) and the output route; optionally keep some languages.

    Args:
        languages (list[str] | None): languages to keep; None keeps every language.
        min_score (float): documents whose top language scores lower are dropped when `languages` is set,
            and routed to "other" otherwise.
        routes (dict[str, str] | None): language -> output bucket (see `route_language`).
    """

    name = "🌍 fastText lid.176"

    def __init__(self, languages: list[str] | None = None, min_score: float = 0.5,
                 routes: dict[str, str] | None = None, model_path: str | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.languages = set(languages) if languages else None
        self.min_score = min_score
        self.routes = routes
        self.model_path = model_path

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang, score = detect_language(doc.text, self.model_path)
        paragraphs = detect_paragraph_languages(doc.text, model_path=self.model_path)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        doc.metadata["language_route"] = route_language(lang, score, self.routes, self.min_score)
        doc.metadata["paragraph_languages"] = json.dumps(
            {k: round(v, 3) for k, v in language_shares(paragraphs).items()} if paragraphs else {})
        if self.languages is not None:
            if lang not in self.languages:
                return False, "language_not_kept"
            if score < self.min_score:
                return False, "low_language_score"
        return True
