"""Quality classifier step."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate.quality import QualityClassifier


class QualityFilter(BaseFilter):
    """Score documents with the hashed n-gram classifier (batched) and drop those below `threshold`."""

    name = "🎓 quality classifier"

    def __init__(self, model_path: str, threshold: float = 0.5, batch_size: int = 64, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.model_path = model_path
        self.threshold = threshold
        self._classifier: QualityClassifier | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        if self._classifier is None:
            self._classifier = QualityClassifier.load(self.model_path)
        scores = self._classifier.score([doc.text for doc in batch])
        results: list[bool | tuple[bool, str]] = []
        for doc, score in zip(batch, scores):
            doc.metadata["quality_score"] = round(float(score), 4)
            results.append(True if score >= self.threshold else (False, "low_quality"))
        return results
