"""Curated Parquet output with a fixed schema."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.writers.parquet import ParquetWriter

OUTPUT_COLUMNS = ("id", "text", "language", "language_score", "language_route", "paragraph_languages",
                  "quality_score", "token_count", "long_context_tier", "source_file", "html_chars")


def curated_row(self, document: Document) -> dict:
    """Fixed output schema, so every shard has the same columns whatever metadata a document carries."""
    meta = document.metadata
    return {
        "id": document.id, "text": document.text, "language": meta.get("language", "und"),
        "language_score": float(meta.get("language_score", 0.0)), "language_route": meta.get("language_route", "other"),
        "paragraph_languages": meta.get("paragraph_languages", "{}"),
        "quality_score": float(meta.get("quality_score", -1.0)), "token_count": int(meta.get("token_count", -1)),
        "long_context_tier": meta.get("long_context_tier", "short"), "source_file": str(meta.get("source_file", "")),
        "html_chars": int(meta.get("html_chars", -1)),
    }


class CuratedParquetWriter(ParquetWriter):
    """Parquet shards routed by language: `<output>/<language_route>/<rank>.parquet`."""

    name = "📒 curated parquet"

    def __init__(self, output_folder: str, output_filename: str = "${language_route}/${rank}.parquet"):
        super().__init__(output_folder, output_filename, adapter=curated_row, use_content_defined_chunking=False)


class LongContextParquetWriter(CuratedParquetWriter):
    """Also write documents above the long-context threshold to `<output>/<tier>/<rank>.parquet`."""

    name = "📒 long-context parquet"

    def __init__(self, output_folder: str):
        super().__init__(output_folder, "${long_context_tier}/${rank}.parquet")

    def write(self, document: Document, rank: int = 0, **kwargs):
        if document.metadata.get("long_context_tier", "short") != "short":
            super().write(document, rank, **kwargs)
