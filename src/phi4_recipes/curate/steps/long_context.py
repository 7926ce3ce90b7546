"""Long-context tagging step."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from phi4_recipes.curate.long_docs import count_tokens, long_context_tier


class LongContextTagger(PipelineStep):
    """Add `token_count` (cl100k) and `long_context_tier` ("short", "8k+", "16k+") for midtraining selection."""

    type = "🏷 - TAGGER"
    name = "📏 long-context tier"

    def __init__(self, long_tokens: int = 8_192, extra_long_tokens: int = 16_384):
        super().__init__()
        self.long_tokens = long_tokens
        self.extra_long_tokens = extra_long_tokens

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                tokens = count_tokens(doc.text)
                tier = long_context_tier(tokens, self.long_tokens, self.extra_long_tokens)
            doc.metadata["token_count"] = tokens
            doc.metadata["long_context_tier"] = tier
            self.stat_update(f"tier_{tier}")
            self.stat_update("tokens", value=tokens)
            yield doc
