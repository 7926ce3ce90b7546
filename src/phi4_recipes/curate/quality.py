"""A small, fast document-quality classifier trained on LLM (or any) labels.

Features are hashed word 1-2 grams plus character 3-5 grams (scikit-learn's HashingVectorizer, so there is
no vocabulary to store and scoring is one sparse dot product); the model is a logistic regression. Labels
come from a JSONL file (`text`, `label` in {0, 1}, optional `split`) or from `annotate(texts, label_fn)`,
where `label_fn` can wrap an LLM judge served by the generation module's OpenAI-compatible backend.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support

from ..jsonl import read_jsonl

BUILTIN_LABELS = Path(__file__).parent / "data" / "quality_labels.jsonl"
MODEL_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LabeledText:
    """One annotated document: label 1 = keep (educational, well-formed), 0 = drop."""

    text: str
    label: int
    split: str | None = None
    id: str | None = None


def load_labeled_jsonl(path: str | Path) -> list[LabeledText]:
    """Read annotations; each row needs `text` (str) and `label` (0 or 1, bool accepted).

    Raises:
        ValueError: naming the file, line and key of the first bad row.
    """
    path = Path(path)
    out = []
    for line_number, row in read_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{line_number}: key 'text' missing or not a string")
        label = row.get("label")
        if isinstance(label, bool):
            label = int(label)
        if label not in (0, 1):
            raise ValueError(f"{path}:{line_number}: key 'label' must be 0 or 1, got {label!r}")
        split = row.get("split")
        if split is not None and split not in ("train", "test"):
            raise ValueError(f"{path}:{line_number}: key 'split' must be 'train' or 'test', got {split!r}")
        out.append(LabeledText(row["text"], label, split, str(row["id"]) if "id" in row else None))
    if not out:
        raise ValueError(f"{path}: no labelled rows")
    return out


def annotate(texts: Iterable[str], label_fn: Callable[[str], int], out_path: str | Path | None = None
             ) -> list[LabeledText]:
    """Label texts with `label_fn` (e.g. an LLM judge) and optionally write them as JSONL for training.

    Args:
        texts (Iterable[str]): documents to label.
        label_fn (Callable[[str], int]): returns 1 (keep) or 0 (drop) for a document.
        out_path (str | Path | None): where to write `{"text", "label"}` rows, appended one per call.
    """
    labelled = []
    for position, text in enumerate(texts):
        label = label_fn(text)
        if isinstance(label, bool):
            label = int(label)
        if label not in (0, 1):
            raise ValueError(f"label_fn returned {label!r} for text #{position}; expected 0 or 1")
        labelled.append(LabeledText(text, label))
    if out_path is not None:
        with open(out_path, "a", encoding="utf-8") as handle:
            for item in labelled:
                handle.write(json.dumps({"text": item.text, "label": item.label}, ensure_ascii=False) + "\n")
    return labelled


class QualityClassifier:
    """Hashed n-gram logistic regression; `score` returns P(keep) per document."""

    def __init__(self, n_features: int = 2**18, c: float = 4.0, seed: int = 0):
        self.n_features = n_features
        self.word_vectorizer = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False,
                                                 lowercase=True)
        self.char_vectorizer = HashingVectorizer(n_features=n_features, analyzer="char_wb", ngram_range=(3, 5),
                                                 alternate_sign=False, lowercase=True)
        self.model = LogisticRegression(C=c, max_iter=1000, random_state=seed)
        self.fitted = False

    def features(self, texts: list[str]) -> sparse.csr_matrix:
        # Very long documents are scored on their first 20k characters: quality shows early and this bounds cost.
        clipped = [text[:20_000] for text in texts]
        return sparse.hstack([self.word_vectorizer.transform(clipped), self.char_vectorizer.transform(clipped)],
                             format="csr")

    def fit(self, texts: list[str], labels: list[int]) -> QualityClassifier:
        if len(set(labels)) < 2:
            raise ValueError("training labels must contain both classes (0 and 1)")
        self.model.fit(self.features(texts), np.asarray(labels))
        self.fitted = True
        return self

    def score(self, texts: list[str]) -> np.ndarray:
        """P(label = 1) for each text, shape (len(texts),)."""
        if not self.fitted:
            raise RuntimeError("QualityClassifier.score called before fit/load")
        if not texts:
            return np.zeros(0)
        return self.model.predict_proba(self.features(texts))[:, 1]

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            pickle.dump({"format": MODEL_FORMAT_VERSION, "n_features": self.n_features, "model": self.model}, handle)

    @classmethod
    def load(cls, path: str | Path) -> QualityClassifier:
        """Load a classifier written by `save` (a pickle: only load files you produced)."""
        with open(path, "rb") as handle:
            payload = pickle.load(handle)
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT_VERSION:
            raise ValueError(f"{path}: not a quality classifier saved by phi4_recipes (format {MODEL_FORMAT_VERSION})")
        classifier = cls(n_features=payload["n_features"])
        classifier.model = payload["model"]
        classifier.fitted = True
        return classifier


@dataclass(frozen=True)
class HeldOutMetrics:
    """Precision/recall of the keep class (label 1) on the held-out split."""

    precision: float
    recall: float
    f1: float
    train_size: int
    test_size: int
    threshold: float


def split_examples(examples: list[LabeledText], test_fraction: float, seed: int
                   ) -> tuple[list[LabeledText], list[LabeledText]]:
    """Use the rows' own `split` when every row has one; otherwise a seeded stratified split."""
    if all(e.split for e in examples):
        return [e for e in examples if e.split == "train"], [e for e in examples if e.split == "test"]
    rng = random.Random(seed)
    train, test = [], []
    for label in (0, 1):
        group = [e for e in examples if e.label == label]
        rng.shuffle(group)
        cut = max(1, round(len(group) * test_fraction)) if len(group) > 1 else 0
        test.extend(group[:cut])
        train.extend(group[cut:])
    return train, test


def train_quality_classifier(examples: list[LabeledText], test_fraction: float = 0.25, seed: int = 0,
                             threshold: float = 0.5) -> tuple[QualityClassifier, HeldOutMetrics]:
    """Fit on the train split, measure precision/recall on the held-out split.

    Args:
        examples (list[LabeledText]): annotated documents.
        test_fraction (float): held-out share when the rows carry no `split`.
        seed (int): split and solver seed.
        threshold (float): P(keep) at or above which a document counts as predicted keep.
    """
    train, test = split_examples(examples, test_fraction, seed)
    if not test:
        raise ValueError("held-out split is empty; add rows or raise test_fraction")
    classifier = QualityClassifier(seed=seed).fit([e.text for e in train], [e.label for e in train])
    predicted = (classifier.score([e.text for e in test]) >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(
        [e.label for e in test], predicted, average="binary", pos_label=1, zero_division=0)
    return classifier, HeldOutMetrics(float(precision), float(recall), float(f1), len(train), len(test), threshold)
