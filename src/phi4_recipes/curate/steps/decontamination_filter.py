"""Decontamination step."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate.decontaminate import load_eval_texts
from phi4_recipes.data.ngrams import build_ngram_index, contamination_of


class DecontaminationFilter(BaseFilter):
    """Drop documents that contain evaluation items (shared word n-grams, see `decontaminate`)."""

    name = "🧼 decontamination"

    def __init__(self, eval_files: list[str], n: int = 13, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.eval_files = list(eval_files)
        self.n = n
        self._index = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            texts, ids = [], []
            for path in self.eval_files:
                file_texts, file_ids = load_eval_texts(path)
                texts += file_texts
                ids += file_ids
            self._index = build_ngram_index(texts, n=self.n, ids=ids)
        hit = contamination_of(doc.text, self._index, doc.id)
        if hit.matched:
            doc.metadata["contaminated_with"] = sorted(hit.matched)[:5]
            return False, "contaminated"
        return True
