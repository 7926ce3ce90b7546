"""The curation stages as datatrove pipeline steps, one step per module; each counts what it drops.

Stage 1, one task per input shard:
    HtmlFileReader -> HtmlInputFilter -> HtmlExtractStep -> LanguageIdFilter -> CorruptionFilter
    -> QualityFilter -> DecontaminationFilter -> LongContextTagger -> DedupSignatureWriter -> JsonlWriter
Stage 2, one task: DedupClusterStep (exact + MinHash LSH groups -> per-task removal lists)
Stage 3, one task per shard: IntermediateJsonlReader -> DedupFilter -> CuratedParquetWriter (+ LongContextParquetWriter)

Models and indexes load lazily inside `run`/`filter`, so steps pickle cheaply to local workers and Slurm jobs.
"""

from phi4_recipes.curate.steps.corruption_filter import CorruptionFilter
from phi4_recipes.curate.steps.decontamination_filter import DecontaminationFilter
from phi4_recipes.curate.steps.dedup_clusters import DedupClusterStep
from phi4_recipes.curate.steps.dedup_filter import DedupFilter
from phi4_recipes.curate.steps.dedup_signatures import DedupSignatureWriter
from phi4_recipes.curate.steps.html_extract import HtmlExtractStep
from phi4_recipes.curate.steps.html_input_filter import HtmlInputFilter
from phi4_recipes.curate.steps.html_reader import HtmlFileReader
from phi4_recipes.curate.steps.intermediate_reader import IntermediateJsonlReader
from phi4_recipes.curate.steps.language_id import LanguageIdFilter
from phi4_recipes.curate.steps.long_context import LongContextTagger
from phi4_recipes.curate.steps.parquet_writers import (
    OUTPUT_COLUMNS,
    CuratedParquetWriter,
    LongContextParquetWriter,
    curated_row,
)
from phi4_recipes.curate.steps.quality_filter import QualityFilter

__all__ = ["OUTPUT_COLUMNS", "CorruptionFilter", "CuratedParquetWriter", "DecontaminationFilter", "DedupClusterStep",
           "DedupFilter", "DedupSignatureWriter", "HtmlExtractStep", "HtmlFileReader", "HtmlInputFilter",
           "IntermediateJsonlReader", "LanguageIdFilter", "LongContextParquetWriter", "LongContextTagger",
           "QualityFilter", "curated_row"]
