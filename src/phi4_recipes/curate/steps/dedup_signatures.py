"""Dedup stage 1: signatures."""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from phi4_recipes.data.near_dedup import MinHashParams, signature_record


class DedupSignatureWriter(PipelineStep):
    """Write one exact-hash + MinHash-band record per passing document to `<folder>/<rank>.jsonl`."""

    type = "🫂 - DEDUP"
    name = "✍ dedup signatures"

    def __init__(self, folder: str, params: MinHashParams = MinHashParams()):
        super().__init__()
        self.folder = folder
        self.params = params

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        with open(Path(self.folder) / f"{rank:05d}.jsonl", "w", encoding="utf-8") as handle:
            for position, doc in enumerate(data):
                with self.track_time():
                    record = signature_record(doc.id, rank, position, doc.text, self.params)
                    handle.write(json.dumps(record) + "\n")
                self.stat_update("signatures")
                yield doc
