"""Raw page bytes: encoding detection and the reasons bad input is skipped."""

import codecs

import pytest

from phi4_recipes.curate.html_input import bad_input_reason, decode_html

TEXT = "<html><head><meta charset='{}'></head><body><p>Café « Léa » — naïve façade</p></body></html>"


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b"  \n ", "empty"),
    (b"%PDF-1.7\n%binary", "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "binary"),
    (b"<html>" + b"\x00" * 10 + b"</html>", "binary"),
    (bytes(range(1, 32)) * 20, "binary"),
    (b"<p>" + b"x" * 2000 + b"</p>", "too_large"),
    (b"<p>fine</p>", None),
])
def test_bad_input_reason(raw, reason):
    assert bad_input_reason(raw, max_bytes=1000) == reason


def test_bad_input_reason_on_decoded_text():
    assert bad_input_reason("\x01\x02\x03" * 100) == "binary"
    assert bad_input_reason("<p>ok</p>") is None


@pytest.mark.parametrize("codec", ["utf-8", "windows-1252", "iso-8859-1", "utf-16"])
def test_declared_and_bom_encodings(codec):
    html = TEXT.format(codec)
    if codec in ("windows-1252", "iso-8859-1"):
        html = html.replace("—", "-")
    raw = html.encode(codec)  # Python's utf-16 codec writes a BOM
    assert decode_html(raw) == html


def test_lying_declaration_falls_back_to_utf8():
    html = TEXT.format("shift_jis")
    assert decode_html(html.encode("utf-8")) == html


def test_undeclared_legacy_encoding_is_detected():
    html = "<html><body><p>" + "Le café de la gare est fermé le dimanche et le lundi. " * 5 + "</p></body></html>"
    decoded = decode_html(html.encode("cp1252"))
    assert "café" in decoded and "fermé" in decoded


def test_utf8_bom():
    assert decode_html(codecs.BOM_UTF8 + "<p>é</p>".encode()) == "<p>é</p>"
