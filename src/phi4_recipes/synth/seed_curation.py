"""Seed curation, the report's two-stage filter: an annotator scores each page for educational value and
reasoning depth; the pages it keeps are split into passages, and each passage is scored for factual and
reasoning content. Kept passages carry both stages' scores.
"""

from __future__ import annotations

import re

from .model_output import BadModelOutput, parse_scores
from .workflow import SourceResult, Workflow, drop, require

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def split_passages(text: str, target_words: int) -> list[tuple[int, int]]:
    """Character spans of consecutive passages of about ``target_words`` words, each ending on a sentence."""
    spans, start, words, cursor = [], 0, 0, 0
    for match in SENTENCE_END.finditer(text):
        words += len(text[cursor:match.start()].split())
        cursor = match.end()
        if words >= target_words:
            spans.append((start, match.start()))
            start, words = match.end(), 0
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


class SeedCuration(Workflow):
    name = "seed_curation"
    prompt_names = ("score_page", "score_passage")
    formats = ("text",)

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        text = require(row, o.text_field)
        [reply] = self.ask("score_page", f"{row_id}:page", source_id=row_id, text=text[:o.max_page_chars])
        page = parse_scores(reply, "page_scores", ("educational_value", "reasoning_depth"), 0, 10)
        page_score = sum(page.values()) / len(page)
        if page_score < o.page_threshold:
            return SourceResult(row_id, drops=[drop("page_below_threshold", scores=page)])
        result = SourceResult(row_id)
        for index, (start, end) in enumerate(split_passages(text, o.passage_words)[:o.max_passages]):
            passage = text[start:end]
            [reply] = self.ask("score_passage", f"{row_id}:passage:{index}", text=passage)
            try:
                scores = parse_scores(reply, "passage_scores", ("factual", "reasoning"), 0, 10)
            except BadModelOutput as err:  # one passage's bad reply costs that passage, counted, not the page
                result.drops.append(drop(err.reason, passage=index, detail=err.detail))
                continue
            if sum(scores.values()) / len(scores) < o.passage_threshold:
                result.drops.append(drop("passage_below_threshold", passage=index, scores=scores))
                continue
            all_scores = {**{f"page_{k}": v for k, v in page.items()}, **{f"passage_{k}": v for k, v in scores.items()}}
            result.rows.append(self.output_row(row_id, index, text=passage, messages=None, scores=all_scores,
                                               passage_span=[start, end]))
        return result
