"""Dedup stage 3: filter."""

from __future__ import annotations

from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from phi4_recipes.curate import dedup as dedup_lib


class DedupFilter(BaseFilter):
    """Drop the documents the cluster step marked ("exact_duplicate" / "near_duplicate")."""

    name = "🫂 dedup filter"

    def __init__(self, removal_folder: str, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.removal_folder = removal_folder
        self._removed: dict[str, str] | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._removed is None:
            # Every list is loaded, not just this rank's: stage 3 may shard the intermediate files differently.
            self._removed = {}
            for path in sorted(Path(self.removal_folder).glob("removed_*.jsonl")):
                rank = int(path.stem.split("_")[1])
                self._removed.update(dedup_lib.read_removal_list(self.removal_folder, rank))
        reason = self._removed.get(doc.id)
        return (False, reason) if reason else True
