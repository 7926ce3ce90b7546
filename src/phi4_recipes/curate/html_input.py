"""Turning raw page bytes into HTML text, and recognising input that must be skipped (never crashing on it).

Encoding: byte-order mark, then the charset the page declares (meta tag / XML declaration), then strict
UTF-8, then resiliparse's detector. Skipped with a reason: empty input, oversized pages, binary payloads
(PDF, images, archives, or bytes with NULs / many control characters).
"""

from __future__ import annotations

import codecs
import re

DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)|<\?xml[^>]+encoding=["']([a-zA-Z0-9_\-]+)""",
                              re.I)
BINARY_MAGIC = (b"%PDF", b"PK\x03\x04", b"\x89PNG", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"\x1f\x8b", b"BZh",
                b"\x7fELF", b"\xd0\xcf\x11\xe0", b"RIFF", b"OggS", b"\x00\x00\x01\x00")
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
DEFAULT_MAX_HTML_BYTES = 5_000_000


def bad_input_reason(raw: bytes | str, max_bytes: int = DEFAULT_MAX_HTML_BYTES) -> str | None:
    """Why a page must be skipped before parsing ("empty", "too_large", "binary"), or None if it is fine.

    Args:
        raw (bytes | str): the page as fetched (bytes) or already decoded (str; size counted in characters).
        max_bytes (int): pages above this size are skipped; parsing them costs seconds and they are almost
            always data dumps or generated listings.
    """
    if not raw or not raw.strip():
        return "empty"
    if len(raw) > max_bytes:
        return "too_large"
    head = raw[:8192]
    if isinstance(head, str):
        if head.lstrip().startswith("%PDF"):
            return "binary"
        controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\f") + head.count("\ufffd")
    else:
        if head.startswith(BINARY_MAGIC) and not any(head.startswith(bom) for bom, _ in BOMS):
            return "binary"
        if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "binary"
        controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13))
    if controls > 0.05 * len(head):
        return "binary"
    return None


def decode_html(raw: bytes) -> str:
    """Decode page bytes to text, trusting the BOM, then the declared charset, then detection.

    Raises:
        UnicodeDecodeError: never for real pages; resiliparse's fallback decodes any byte string.
    """
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding, errors="replace")
    match = DECLARED_CHARSET.search(raw[:4096])
    if match:
        declared = (match.group(1) or match.group(2)).decode("ascii", errors="ignore").lower()
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            codec = None
        if codec:
            # Pages that declare Latin-1 are in practice cp1252 (as the WHATWG encoding standard says).
            codec = "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                pass  # the declaration lies; fall through to UTF-8 and detection
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        return bytes_to_str(raw, detect_encoding(raw))
