"""The curation stages as datatrove pipeline steps; each counts what it drops under `dropped_<reason>`.

Stage 1, one task per input shard:
    HtmlFileReader -> HtmlExtractStep -> LanguageIdFilter -> CorruptionFilter -> QualityFilter
    -> DecontaminationFilter -> LongContextTagger -> DedupSignatureWriter -> JsonlWriter (intermediate)
Stage 2, one task: DedupClusterStep (exact + MinHash LSH groups -> per-task removal lists)
Stage 3, one task per shard: JsonlReader -> DedupFilter -> CuratedParquetWriter (+ LongContextParquetWriter)

Models and indexes load lazily inside `run`, so steps pickle cheaply to local workers and Slurm jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.parquet import ParquetWriter
from datatrove.utils.typeshelper import StatHints

from phi4_recipes.curate import dedup as dedup_lib
from phi4_recipes.curate.corruption import CorruptionThresholds, corruption_reason
from phi4_recipes.curate.decontaminate import build_ngram_index, contamination_of, load_eval_texts
from phi4_recipes.curate.extract import html_to_text
from phi4_recipes.curate.html_input import DEFAULT_MAX_HTML_BYTES, bad_input_reason, decode_html
from phi4_recipes.curate.langid import (
    detect_language,
    detect_paragraph_languages,
    language_shares,
    route_language,
)
from phi4_recipes.curate.long_docs import count_tokens, long_context_tier
from phi4_recipes.curate.quality import QualityClassifier


class HtmlFileReader(BaseDiskReader):
    """Read one page per `.html`/`.htm` file as bytes, decode it, and skip (with a counted reason) what is
    empty, oversized or binary. The document id is the file's path relative to the input folder."""

    name = "📄 HTML files"

    def __init__(self, data_folder, max_bytes: int = DEFAULT_MAX_HTML_BYTES, glob_pattern: str | None = "**/*.htm*",
                 limit: int = -1):
        super().__init__(data_folder, limit=limit, glob_pattern=glob_pattern)
        self.max_bytes = max_bytes

    def read_file(self, filepath: str):
        with self.data_folder.open(filepath, "rb") as handle:
            raw = handle.read(self.max_bytes + 1)
        reason = bad_input_reason(raw, self.max_bytes)
        if reason:
            self.stat_update(f"skipped_{reason}")
            return
        try:
            html = decode_html(raw)
        except Exception:  # a decoder bug must cost one page, not the run
            self.stat_update("skipped_undecodable")
            return
        self.stat_update("read")
        yield Document(text=html, id=filepath, metadata={"source_file": filepath})


def _extract_or_error(html: str) -> str | Exception:
    # Returned (not raised) so datatrove's sandbox process survives a failing page.
    try:
        return html_to_text(html)
    except Exception as err:  # noqa: BLE001 - any parser failure is a skipped page
        return err


class HtmlExtractStep(PipelineStep):
    """Replace each document's HTML with `html_to_text` output.

    Args:
        timeout_s (float | None): per-page limit; pages are then parsed in a datatrove sandbox process that
            is restarted after a timeout or crash. None parses in-process (faster, no protection).
        max_chars (int): documents whose HTML is longer are skipped as "too_large".
    """

    type = "🛢 - EXTRAC"
    name = "📐 html_to_text"

    def __init__(self, timeout_s: float | None = 5.0, max_chars: int = DEFAULT_MAX_HTML_BYTES):
        super().__init__()
        self.timeout_s = timeout_s
        self.max_chars = max_chars

    def _drop(self, reason: str) -> None:
        self.stat_update(StatHints.dropped, f"dropped_{reason}")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        sandbox = ExtractorSandbox(timeout=self.timeout_s, warmup_text="") if self.timeout_s else None
        try:
            for doc in data:
                self.stat_update(StatHints.total)
                reason = bad_input_reason(doc.text, self.max_chars)
                if reason:
                    self._drop(reason)
                    continue
                with self.track_time():
                    try:
                        result = (sandbox.process_document(doc.text, _extract_or_error) if sandbox
                                  else _extract_or_error(doc.text))
                    except TimeoutError:
                        self._drop("timeout")
                        continue
                    except EOFError:
                        self._drop("extractor_crashed")
                        continue
                    except Exception:  # noqa: BLE001 - the sandbox re-raises the page's own error
                        self._drop("extract_error")
                        continue
                if isinstance(result, Exception):
                    self._drop("extract_error")
                    continue
                if not result.strip():
                    self._drop("no_text")
                    continue
                doc.metadata["html_chars"] = len(doc.text)
                doc.text = result
                self.stat_update(StatHints.forwarded)
                self.update_doc_stats(doc)
                yield doc
        finally:
            if sandbox is not None:
                sandbox._cleanup_process()


class LanguageIdFilter(BaseFilter):
    """Tag language (whole document and per paragraph) and the output route; optionally keep some languages.

    Args:
        languages (list[str] | None): languages to keep; None keeps every language.
        min_score (float): documents whose top language scores lower are dropped when `languages` is set,
            and routed to "other" otherwise.
        routes (dict[str, str] | None): language -> output bucket (see `route_language`).
    """

    name = "🌍 fastText lid.176"

    def __init__(self, languages: list[str] | None = None, min_score: float = 0.5,
                 routes: dict[str, str] | None = None, model_path: str | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.languages = set(languages) if languages else None
        self.min_score = min_score
        self.routes = routes
        self.model_path = model_path

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang, score = detect_language(doc.text, self.model_path)
        paragraphs = detect_paragraph_languages(doc.text, model_path=self.model_path)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        doc.metadata["language_route"] = route_language(lang, score, self.routes, self.min_score)
        doc.metadata["paragraph_languages"] = json.dumps(
            {k: round(v, 3) for k, v in language_shares(paragraphs).items()} if paragraphs else {})
        if self.languages is not None:
            if lang not in self.languages:
                return False, "language_not_kept"
            if score < self.min_score:
                return False, "low_language_score"
        return True


class CorruptionFilter(BaseFilter):
    """Drop garbled, repetitive or spammy text; the reason names the failed check (see `corruption_reason`)."""

    name = "🧪 corruption"

    def __init__(self, thresholds: CorruptionThresholds | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.thresholds = thresholds or CorruptionThresholds()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reason = corruption_reason(doc.text, self.thresholds)
        return (False, reason) if reason else True


class QualityFilter(BaseFilter):
    """Score documents with the hashed n-gram classifier (batched) and drop those below `threshold`."""

    name = "🎓 quality classifier"

    def __init__(self, model_path: str, threshold: float = 0.5, batch_size: int = 64, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.model_path = model_path
        self.threshold = threshold
        self._classifier: QualityClassifier | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        if self._classifier is None:
            self._classifier = QualityClassifier.load(self.model_path)
        scores = self._classifier.score([doc.text for doc in batch])
        results: list[bool | tuple[bool, str]] = []
        for doc, score in zip(batch, scores):
            doc.metadata["quality_score"] = round(float(score), 4)
            results.append(True if score >= self.threshold else (False, "low_quality"))
        return results


class DecontaminationFilter(BaseFilter):
    """Drop documents that contain evaluation items (shared word n-grams, see `decontaminate`)."""

    name = "🧼 decontamination"

    def __init__(self, eval_files: list[str], n: int = 13, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.eval_files = list(eval_files)
        self.n = n
        self._index = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            texts, ids = [], []
            for path in self.eval_files:
                file_texts, file_ids = load_eval_texts(path)
                texts += file_texts
                ids += file_ids
            self._index = build_ngram_index(texts, n=self.n, ids=ids)
        hit = contamination_of(doc.text, self._index, doc.id)
        if hit.matched:
            doc.metadata["contaminated_with"] = sorted(hit.matched)[:5]
            return False, "contaminated"
        return True


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


class DedupSignatureWriter(PipelineStep):
    """Write one exact-hash + MinHash-band record per passing document to `<folder>/<rank>.jsonl`."""

    type = "🫂 - DEDUP"
    name = "✍ dedup signatures"

    def __init__(self, folder: str, params: dedup_lib.MinHashParams = dedup_lib.MinHashParams()):
        super().__init__()
        self.folder = folder
        self.params = params

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        with open(Path(self.folder) / f"{rank:05d}.jsonl", "w", encoding="utf-8") as handle:
            for position, doc in enumerate(data):
                with self.track_time():
                    record = dedup_lib.signature_record(doc.id, rank, position, doc.text, self.params)
                    handle.write(json.dumps(record) + "\n")
                self.stat_update("signatures")
                yield doc


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
            decisions = dedup_lib.find_duplicates(records)
            counts = dedup_lib.write_removal_lists(decisions, self.removal_folder)
        self.stat_update("documents", value=len(records))
        for reason, count in counts.items():
            self.stat_update(reason, value=count)
        yield from ()


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
