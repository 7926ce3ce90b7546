"""Score html_to_text on the real-page dev set, split into a part we look at and a held-out part that only decides.

The pages and the scorer live outside the repo (../shared/curate-dev: trafilatura's evaluation corpus plus its
bench.py); nothing from them is committed. The split is a stable hash of the page name, so every run and every
engineer gets the same two parts, and rules are never tuned on the held-out pages.

    CURATE_REAL_DATA=/tmp/cdev PYTHONPATH=src python ../shared/curate-dev/bench.py --only ours,traf,resiliparse
    CURATE_DEV_BENCH=../shared/curate-dev/bench.py python bench/curate_dev_split.py [--results /tmp/curate-dev-results]
        -> one table per part (F1/P/R on the 'with'/'without' snippets, empty pages, crashes, docs/s)
    ... --losses N   the N dev-part pages where ours misses most snippets that trafilatura gets (never held-out ones)

One run of every extractor with the per-column counts of bench/curate_dev_columns.py (code lines, posts, rows,
formulas kept) and docs/s, each page given to every extractor in turn (the order rotates page by page):
    CURATE_REAL_DATA=/tmp/cdev CURATE_DEV_BENCH=../shared/curate-dev/bench.py PYTHONPATH=src:bench \
        python bench/curate_dev_split.py --run [--limit N]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path

HELD_OUT_SHARE = 4  # one page in four is held out


def is_held_out(name: str) -> bool:
    """Stable page split: the same page is held out on every machine and in every run."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % HELD_OUT_SHARE == 0


def _load_scorer(path: str):
    spec = importlib.util.spec_from_file_location("curate_dev_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_table(results: list[dict], names: list[str], scorer) -> str:
    lines = ["| part | extractor | F1 | P | R | empty | crashes | docs/s | speed vs trafilatura |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for part, held in (("dev", False), ("held-out", True)):
        rows = [r for r in results if is_held_out(r["name"]) == held]
        summary = scorer.aggregate(rows, names)
        traf_speed = next((s["docs_per_s"] for n, s in summary.items() if n.startswith("trafilatura")), None)
        for name, s in summary.items():
            t = s.get("traf", {})
            ratio = f"{s['docs_per_s'] / traf_speed:.1f}x" if traf_speed else "n/a"
            lines.append(f"| {part} ({len(rows)} pages) | {name} | {t.get('f1', 0):.3f} | {t.get('precision', 0):.3f} "
                         f"| {t.get('recall', 0):.3f} | {s['empty']} | {s['crashes']} | {s['docs_per_s']:.1f} | {ratio} |")
    return "\n".join(lines)


def dev_losses(results: list[dict], ours: str, other: str, limit: int) -> list[str]:
    """Dev-part pages sorted by how many more snippets `other` gets right than `ours` (TP gained + FP avoided)."""
    rows = []
    for r in results:
        if is_held_out(r["name"]) or "traf" not in r["scores"][ours]:
            continue
        tp, fp, _, _ = r["scores"][ours]["traf"]
        otp, ofp, _, _ = r["scores"][other]["traf"]
        rows.append(((otp - tp) + (fp - ofp), r["name"], tp, fp, otp, ofp))
    rows.sort(reverse=True)
    return [f"{gap:+d} {name}  ours tp={tp} fp={fp}  other tp={otp} fp={ofp}" for gap, name, tp, fp, otp, ofp in
            rows[:limit] if gap > 0]


COLUMNS = ("code lines", "posts", "rows", "formulas")


def build_extractors() -> dict:
    import trafilatura
    from datatrove.pipeline.extractors import Trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    from phi4_recipes.curate.extract import html_to_text

    datatrove_trafilatura = Trafilatura()  # favour_precision=True, include_comments=False, deduplicate=True
    return {
        "phi4 html_to_text": html_to_text,
        "trafilatura (defaults)": trafilatura.extract,
        "trafilatura (markdown, tables)": lambda html: trafilatura.extract(
            html, output_format="markdown", include_formatting=True, include_tables=True),
        "trafilatura (datatrove defaults)": datatrove_trafilatura.extract,
        "resiliparse (main_content)": lambda html: extract_plain_text(html, main_content=True),
    }


def run_all(scorer, limit: int) -> tuple[list[dict], dict]:
    """Every extractor on every page, in one process; per page: snippet counts, column counts and seconds."""
    from curate_dev_columns import column_counts, page_reference

    from phi4_recipes.curate.html_input import decode_html

    data = Path(os.environ.get("CURATE_REAL_DATA", "/tmp/cdev"))
    pages = [json.loads(line) for line in open(Path(scorer.__file__).parent / "pages.jsonl", encoding="utf-8")]
    pages = pages[:limit] if limit else pages
    extractors = build_extractors()
    names = list(extractors)
    for extract in extractors.values():  # lazy imports and caches outside the timed calls
        extract("<html><body><main><h1>t</h1><p>" + "word " * 200 + "</p></main></body></html>")
    results = []
    for index, page in enumerate(pages):
        html = decode_html((data / page["file"]).read_bytes())
        reference = page_reference(html)
        row = {"name": page["name"], "time": {}, "empty": {}, "err": {}, "traf": {}, "columns": {}}
        for name in names[index % len(names):] + names[:index % len(names)]:
            start = time.perf_counter()
            try:
                out, err = extractors[name](html) or "", None
            except Exception as exc:  # noqa: BLE001 - a crash is a result to count
                out, err = "", f"{type(exc).__name__}: {exc}"[:200]
            row["time"][name] = time.perf_counter() - start
            row["err"][name], row["empty"][name] = err, not out.strip() and err is None
            row["traf"][name] = scorer.traf_counts(page["gt"], out)
            row["columns"][name] = column_counts(reference, out)
        results.append(row)
    return results, {"uptime": os.popen("uptime").read().strip()}


def columns_table(results: list[dict]) -> str:
    names = list(results[0]["time"])
    lines = ["| part | extractor | F1 | P | R | " + " | ".join(f"{c} kept" for c in COLUMNS)
             + " | crashes | empty | docs/s | docs/s vs resiliparse |", "|" + " --- |" * (9 + len(COLUMNS))]
    for part, held in (("dev", False), ("held-out", True)):
        rows = [r for r in results if is_held_out(r["name"]) == held]
        rate = {n: len(rows) / sum(r["time"][n] for r in rows) for n in names}
        resiliparse = next((v for n, v in rate.items() if n.startswith("resiliparse")), None)
        for name in names:
            tp, fp, fn, _ = (sum(r["traf"][name][i] for r in rows) for i in range(4))
            p, rc = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
            cells = []
            for column in COLUMNS:
                have = [r["columns"][name][column] for r in rows if column in r["columns"][name]]
                kept, total = sum(k for k, _ in have), sum(t for _, t in have)
                cells.append(f"{kept}/{total} ({100 * kept / total:.1f}%, {len(have)} pages)" if total else "n/a")
            lines.append(
                f"| {part} ({len(rows)}) | {name} | {2 * p * rc / (p + rc) if p + rc else 0:.4f} | {p:.3f} | {rc:.3f} | "
                + " | ".join(cells) + f" | {sum(r['err'][name] is not None for r in rows)} "
                f"| {sum(r['empty'][name] for r in rows)} | {rate[name]:.1f} | "
                f"{rate[name] / resiliparse:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="/tmp/curate-dev-results", help="bench.py --out folder")
    parser.add_argument("--losses", type=int, default=0)
    parser.add_argument("--run", action="store_true", help="run every extractor here, with the column counts")
    parser.add_argument("--limit", type=int, default=0, help="with --run: the first N pages only")
    args = parser.parse_args()
    scorer = _load_scorer(os.environ.get("CURATE_DEV_BENCH", "../shared/curate-dev/bench.py"))
    if args.run:
        before = os.popen("uptime").read().strip()
        results, info = run_all(scorer, args.limit)
        Path(args.results).mkdir(parents=True, exist_ok=True)
        with open(Path(args.results) / "columns_per_page.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
        print(f"load before: {before}\nload after: {info['uptime']}")
        print(columns_table(results))
        return
    results = [json.loads(line) for line in open(Path(args.results) / "per_page.jsonl", encoding="utf-8")]
    names = list(results[0]["scores"])
    print(split_table(results, names, scorer))
    if args.losses:
        print("\n".join(dev_losses(results, names[0], names[1], args.losses)))


if __name__ == "__main__":
    main()
