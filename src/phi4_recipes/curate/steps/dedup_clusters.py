"""Dedup stage 2: clusters."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from phi4_recipes.curate import dedup as dedup_lib
from phi4_recipes.data.near_dedup import find_duplicates


class DedupClusterStep(PipelineStep):
    """Single task: read every signature file, decide duplicates, write per-task removal lists."""

    type = "🫂 - DEDUP"
    name = "🔗 dedup clusters"

    def __init__(self, signature_folder: str, removal_folder: str):
        super().__init__()
        self.signature_folder = signature_folder
        self.removal_folder = removal_folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if rank != 0:
            return
        with self.track_time():
            records = dedup_lib.read_signature_folder(self.signature_folder)
            decisions = find_duplicates(records)
            counts = dedup_lib.write_removal_lists(decisions, self.removal_folder)
        self.stat_update("documents", value=len(records))
        for reason, count in counts.items():
            self.stat_update(reason, value=count)
        yield from ()
