"""Stage 3's reader of the shards stage 1 wrote, which may be none at all."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.readers import JsonlReader


class IntermediateJsonlReader(JsonlReader):
    """JsonlReader that reads nothing, instead of raising "No files found", when stage 1 kept no document.

    datatrove's JsonlWriter only creates a shard when a document reaches it, so a run in which every
    document was dropped leaves the intermediate folder empty; that run must still finish and write its stats.
    """

    name = "📖 intermediate shards"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        try:
            shards = self.data_folder.list_files(recursive=self.recursive, glob_pattern=self.glob_pattern)
        except FileNotFoundError:
            shards = []
        if not shards:
            self.stat_update("no_input_shards")
            if data:
                yield from data
            return
        yield from super().run(data, rank, world_size)
