"""Extraction quality and throughput of the phi4 curation path vs datatrove's stock trafilatura path.

On the HTML fixtures (tests/fixtures/html/pages, gold in expected/*.json) it measures, per extractor:
  - preserved math: share of gold formulas whose TeX appears in the output (whitespace-insensitive; credited
    even without $ delimiters, which favours the baselines),
  - preserved code: share of gold code blocks found verbatim (indentation included),
  - preserved tables: share of gold table rows whose cells appear in order on one output line,
  - kept text / removed boilerplate: share of gold sentences present / gold boilerplate strings absent,
and the documents/s of extraction + quality filters in one process (same machine, same core, same run):
  - ours:      html_to_text + lid.176 language id + corruption filters
  - datatrove: Trafilatura (datatrove defaults) + GopherRepetitionFilter + GopherQualityFilter

Run: PYTHONPATH=src python bench/curate_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from phi4_recipes.curate.corruption import corruption_reason
from phi4_recipes.curate.extract import html_to_text
from phi4_recipes.curate.langid import detect_language

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "html"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def preservation(extract, pages: list[tuple[str, dict]]) -> dict[str, float]:
    found = {"math": [0, 0], "code": [0, 0], "tables": [0, 0], "text": [0, 0], "boilerplate_removed": [0, 0]}
    for html, gold in pages:
        out = extract(html) or ""
        squashed, lines, flat = _squash(out), out.split("\n"), re.sub(r"\s+", " ", out)
        for tex in gold["math"]:
            found["math"][0] += _squash(tex) in squashed
            found["math"][1] += 1
        for code in gold["code"]:
            found["code"][0] += code in out
            found["code"][1] += 1
        for rows in gold["tables"]:
            for row in rows:
                pattern = r".*?".join(re.escape(cell) for cell in row)
                found["tables"][0] += any(re.search(pattern, line.replace("\\|", "|")) for line in lines)
                found["tables"][1] += 1
        for sentence in gold["text"]:
            found["text"][0] += sentence in flat
            found["text"][1] += 1
        for snippet in gold["absent"]:
            found["boilerplate_removed"][0] += snippet not in out
            found["boilerplate_removed"][1] += 1
    return {key: hit / total for key, (hit, total) in found.items()}


def docs_per_second(process, htmls: list[str], repeats: int) -> float:
    for html in htmls[:3]:  # warm caches and lazy model loads outside the timed loop
        process(html)
    start = time.perf_counter()
    for _ in range(repeats):
        for html in htmls:
            process(html)
    return repeats * len(htmls) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from resiliparse.extract.html2text import extract_plain_text

    pages = [(p.read_text(encoding="utf-8"), json.loads((FIXTURES / "expected" / f"{p.stem}.json").read_text()))
             for p in sorted((FIXTURES / "pages").glob("*.html"))]
    htmls = [html for html, _ in pages]
    trafilatura = Trafilatura()  # datatrove's defaults: favour precision, no comments, txt output
    extractors = {
        "phi4 html_to_text": html_to_text,
        "datatrove Trafilatura": trafilatura.extract,
        "resiliparse extract_plain_text": lambda html: extract_plain_text(html, main_content=True,
                                                                          preserve_formatting=True),
    }
    print(f"fixtures: {len(pages)} pages, "
          f"{sum(len(g['math']) for _, g in pages)} formulas, {sum(len(g['code']) for _, g in pages)} code blocks, "
          f"{sum(len(r) for _, g in pages for r in g['tables'])} table rows")
    print("| extractor | math | code | table rows | text | boilerplate removed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, extract in extractors.items():
        r = preservation(extract, pages)
        print(f"| {name} | {r['math']:.1%} | {r['code']:.1%} | {r['tables']:.1%} | {r['text']:.1%} | "
              f"{r['boilerplate_removed']:.1%} |")

    repetition, quality = GopherRepetitionFilter(), GopherQualityFilter()

    def ours(html: str) -> None:
        text = html_to_text(html)
        detect_language(text)
        corruption_reason(text)

    def stock(html: str) -> None:
        doc = Document(text=trafilatura.extract(html) or "", id="x")
        if doc.text:
            repetition.filter(doc)
            quality.filter(doc)

    ours_rate = docs_per_second(ours, htmls, args.repeats)
    stock_rate = docs_per_second(stock, htmls, args.repeats)
    extract_ours = docs_per_second(html_to_text, htmls, args.repeats)
    extract_stock = docs_per_second(trafilatura.extract, htmls, args.repeats)
    print()
    print("| path (1 process) | docs/s | vs datatrove |")
    print("| --- | --- | --- |")
    print(f"| extraction only: phi4 html_to_text | {extract_ours:.1f} | {extract_ours / extract_stock:.2f}x |")
    print(f"| extraction only: datatrove Trafilatura | {extract_stock:.1f} | 1.00x |")
    print(f"| ours: html_to_text + lid.176 + corruption filters | {ours_rate:.1f} | {ours_rate / stock_rate:.2f}x |")
    print(f"| datatrove: Trafilatura + Gopher repetition + Gopher quality | {stock_rate:.1f} | 1.00x |")


if __name__ == "__main__":
    main()
