"""Read HTML pages from disk, one document per file."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader

from phi4_recipes.curate.html_input import DEFAULT_MAX_HTML_BYTES, bad_input_reason, decode_html


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
