"""Exact and near-duplicate detection shared by curation and synthetic data: normalised-text hashes,
MinHash signatures with LSH banding, and grouping of colliding documents (first one kept).

The I/O around it (signature records per task, removal lists) lives with each stage; this module only
decides which documents duplicate which.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class MinHashParams:
    """LSH layout: `bands` x `rows` permutations; pairs above ~(1/bands)^(1/rows) Jaccard collide.

    The default (14 x 8) makes documents with ~0.72 shingle Jaccard or more collide with probability > 0.5.
    """

    shingle_words: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


def normalize_for_hash(text: str) -> str:
    """Lowercase words joined by single spaces: whitespace and punctuation changes do not make a new doc."""
    return " ".join(WORD.findall(text.lower()))


def exact_hash(text: str) -> str:
    """Hex digest identifying a document's normalised text."""
    return hashlib.blake2b(normalize_for_hash(text).encode("utf-8"), digest_size=16).hexdigest()


def _crc32(data: bytes) -> int:
    # Stable across processes and platforms (unlike hash()), and much cheaper than sha1 per shingle.
    return zlib.crc32(data)


def minhash_bands(text: str, params: MinHashParams = MinHashParams()) -> list[str]:
    """LSH band keys of a document; two documents sharing any key are near-duplicate candidates.

    Args:
        text (str): document text.
        params (MinHashParams): shingle size and band layout.

    Returns:
        list[str]: `params.bands` hex keys (empty when the text has no words).
    """
    words = WORD.findall(text.lower())
    if not words:
        return []
    n = params.shingle_words
    shingles = {" ".join(words[i:i + n]).encode("utf-8") for i in range(max(len(words) - n + 1, 1))}
    signature = MinHash(num_perm=params.num_perm, seed=params.seed, hashfunc=_crc32)
    signature.update_batch(shingles)
    values = np.asarray(signature.hashvalues, dtype=np.uint64).reshape(params.bands, params.rows)
    return [f"{band}:{hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest()}" for band, row in enumerate(values)]


def signature_record(doc_id: str, rank: int, position: int, text: str, params: MinHashParams) -> dict:
    """The JSON-serialisable record the second pass needs for one document."""
    return {"id": doc_id, "rank": rank, "position": position, "exact": exact_hash(text),
            "bands": minhash_bands(text, params)}


@dataclass(frozen=True)
class DuplicateDecision:
    """A dropped document, why, and which kept document it duplicates."""

    id: str
    rank: int
    reason: str  # "exact_duplicate" or "near_duplicate"
    duplicate_of: str


def find_duplicates(records: Iterable[dict]) -> list[DuplicateDecision]:
    """Group documents by exact hash and LSH band collisions and decide which ones to drop.

    Args:
        records (Iterable[dict]): signature records from every task (see `signature_record`).

    Returns:
        list[DuplicateDecision]: every document except the first of its group, first meaning lowest
        (rank, position). Exact matches are reported as such even when they also collide in LSH.
    """
    ordered = sorted(records, key=lambda r: (r["rank"], r["position"]))
    parent = list(range(len(ordered)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the earliest document stays the root, so it is the one kept

    first_exact: dict[str, int] = {}
    first_band: dict[str, int] = {}
    exact_of: dict[int, int] = {}
    for i, record in enumerate(ordered):
        if record["exact"] in first_exact:
            exact_of[i] = first_exact[record["exact"]]
            union(i, first_exact[record["exact"]])
            continue
        first_exact[record["exact"]] = i
        for key in record["bands"]:
            if key in first_band:
                union(i, first_band[key])
            else:
                first_band[key] = i
    decisions = []
    for i, record in enumerate(ordered):
        keeper = root(i)
        if keeper == i:
            continue
        if i in exact_of:
            decisions.append(DuplicateDecision(record["id"], record["rank"], "exact_duplicate",
                                               ordered[exact_of[i]]["id"]))
        else:
            decisions.append(DuplicateDecision(record["id"], record["rank"], "near_duplicate", ordered[keeper]["id"]))
    return decisions
