"""Word n-gram overlap between training documents and evaluation sets.

Shared by curation (curate.steps drops web documents that contain benchmark items) and by evaluation
(evaluation.contamination reports which benchmark items appear in a training corpus), so it sits in
data/, below both. Texts are lowercased and reduced to word characters, so markup, punctuation and
spacing differences do not hide a match. Items shorter than `n` words are matched as a whole (their full
word sequence must appear), as in the GPT-3 and Phi reports.

Typical use:

    index = build_ngram_index(eval_questions, n=13, ids=eval_ids)
    hits = find_contamination(training_docs, index, ids=doc_ids)   # docs that contain eval n-grams
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WORD = re.compile(r"\w+", re.UNICODE)


def normalize_words(text: str) -> list[str]:
    """Lowercased word tokens of `text` (punctuation, markup symbols and spacing dropped)."""
    return WORD.findall(text.lower())


def _grams(words: list[str], n: int) -> Iterable[str]:
    for i in range(len(words) - n + 1):
        yield " ".join(words[i:i + n])


@dataclass
class NgramIndex:
    """n-gram -> ids of the indexed texts that contain it.

    Attributes:
        n (int): n-gram length in words.
        grams (dict[str, set[str]]): full-length n-grams.
        short_texts (dict[int, dict[str, set[str]]]): texts shorter than n words, by length, whole sequence.
        sizes (dict[str, int]): number of distinct n-grams (or 1 for a short text) per indexed id.
        min_words (int): texts with fewer words were not indexed (too generic to mean contamination).
    """

    n: int
    grams: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    short_texts: dict[int, dict[str, set[str]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    min_words: int = 8

    def __len__(self) -> int:
        return len(self.sizes)


def build_ngram_index(texts: Iterable[str], n: int = 13, ids: Sequence[str] | None = None,
                      min_words: int = 8) -> NgramIndex:
    """Index the word n-grams of `texts` (usually evaluation items).

    Args:
        texts (Iterable[str]): texts to index.
        n (int): n-gram length in words (13 as in GPT-3 / Phi decontamination).
        ids (Sequence[str] | None): an id per text (default: "0", "1", ...).
        min_words (int): texts with fewer words are skipped.

    Returns:
        NgramIndex: the index.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    index = NgramIndex(n=n, min_words=min_words)
    for position, text in enumerate(texts):
        item_id = str(ids[position]) if ids is not None else str(position)
        words = normalize_words(text)
        if len(words) < min_words:
            continue
        if len(words) < n:
            index.short_texts.setdefault(len(words), defaultdict(set))[" ".join(words)].add(item_id)
            index.sizes[item_id] = 1
            continue
        grams = set(_grams(words, n))
        for gram in grams:
            index.grams[gram].add(item_id)
        index.sizes[item_id] = len(grams)
    return index


@dataclass(frozen=True)
class ContaminationHit:
    """Overlap of one query text with the index.

    Attributes:
        query_id (str): id of the query text.
        matched (dict[str, int]): indexed id -> number of its n-grams found in the query.
        query_ngrams (int): distinct n-grams of the query.
        overlapping_ngrams (int): distinct query n-grams present in the index.
    """

    query_id: str
    matched: dict[str, int]
    query_ngrams: int
    overlapping_ngrams: int

    @property
    def overlap_fraction(self) -> float:
        """Share of the query's n-grams found in the index (1.0 = the query is fully contained)."""
        return self.overlapping_ngrams / self.query_ngrams if self.query_ngrams else 0.0

    def matched_fraction(self, indexed_id: str, index: NgramIndex) -> float:
        """Share of an indexed text's n-grams that occur in the query (1.0 = that item appears whole)."""
        return self.matched.get(indexed_id, 0) / max(index.sizes.get(indexed_id, 1), 1)


def find_contamination(texts: Iterable[str], index: NgramIndex, ids: Sequence[str] | None = None,
                       min_matches: int = 1) -> list[ContaminationHit]:
    """Report, for every query text that overlaps the index, which indexed texts it overlaps and how much.

    Args:
        texts (Iterable[str]): query texts (training documents, or eval items against a corpus index).
        index (NgramIndex): from `build_ngram_index`.
        ids (Sequence[str] | None): an id per query (default: "0", "1", ...).
        min_matches (int): report a query only when it shares at least this many n-grams with the index.

    Returns:
        list[ContaminationHit]: one entry per overlapping query, in input order.
    """
    hits = []
    for position, text in enumerate(texts):
        query_id = str(ids[position]) if ids is not None else str(position)
        hit = contamination_of(text, index, query_id)
        if hit.overlapping_ngrams >= min_matches:
            hits.append(hit)
    return hits


def contamination_of(text: str, index: NgramIndex, query_id: str = "0") -> ContaminationHit:
    """Overlap of one text with the index (see `find_contamination`)."""
    words = normalize_words(text)
    grams = set(_grams(words, index.n))
    matched: dict[str, int] = defaultdict(int)
    overlapping = 0
    for gram in grams:
        owners = index.grams.get(gram)
        if owners:
            overlapping += 1
            for owner in owners:
                matched[owner] += 1
    for length, table in index.short_texts.items():
        for gram in set(_grams(words, length)):
            owners = table.get(gram)
            if owners:
                overlapping += 1
                for owner in owners:
                    matched[owner] += 1
    return ContaminationHit(query_id, dict(matched), max(len(grams), 1 if words else 0), overlapping)
