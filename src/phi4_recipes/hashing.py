"""Hashes that mean the same on every machine: streaming sha256 of files (manifests, fingerprints) and a
stable 64-bit hash of text (seeds, shards), independent of Python's hash seed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_BLOCK = 1 << 20


def sha256_files(paths: Iterable[str | Path], *, names_relative_to: str | Path | None = None) -> str:
    """sha256 over files read in blocks (a 29 GB checkpoint never sits in memory).

    With ``names_relative_to``, each file's relative name is hashed before its bytes, so a renamed file in a
    dataset folder changes the digest.
    """
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        if names_relative_to is not None:
            digest.update(str(path.relative_to(names_relative_to)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def stable_hash(text: str, *, byteorder: str = "big") -> int:
    """A 64-bit hash of ``text`` that is the same on every machine and Python hash seed (seeds, shards)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), byteorder)
