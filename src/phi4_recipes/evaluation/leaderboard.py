"""Compare evaluation results of several checkpoints: a Markdown table and an HTML page with one bar chart
per benchmark (error bars = stderr), with the Phi-4 report's published numbers as reference rows, and the
paired differences between checkpoints on the same items with their verdicts (evaluation/paired.py).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from phi4_recipes.evaluation.dpo_log import margin_curve, window_mean
from phi4_recipes.evaluation.paired import item_scores, paired_difference, significance_words, verdict
from phi4_recipes.evaluation.results import SCHEMA, read_results
from phi4_recipes.resources import resource_path

REFERENCE_FILE = resource_path("phi4_report.yaml")


@dataclass
class Row:
    """One line of the table: a checkpoint's scores (percent) or a published reference."""

    label: str
    scores: dict[str, float]
    stderrs: dict[str, float] = field(default_factory=dict)
    reference: bool = False
    run: dict[str, str] = field(default_factory=dict)  # checkpoint, date, limit
    metrics: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # benchmark -> (metric, samples)
    path: Path | None = None  # the result file (its per-sample scores sit beside it)


@dataclass
class Comparison:
    """`second` - `first` on one benchmark, per item: the numbers of paired_difference and their verdict."""

    benchmark: str
    first: str
    second: str
    diff: dict
    verdict: str
    sentence: str


def load_reference(path: str | Path = REFERENCE_FILE) -> list[Row]:
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a top-level 'rows' list of {{label, scores}}")
    rows = []
    for index, entry in enumerate(data["rows"]):
        if not isinstance(entry, dict) or "label" not in entry or not isinstance(entry.get("scores"), dict):
            raise ValueError(f"{path}: rows[{index}] needs 'label' and a 'scores' mapping")
        rows.append(Row(label=str(entry["label"]), scores={k: float(v) for k, v in entry["scores"].items()},
                        reference=True))
    return rows


def result_files(paths: list[str | Path]) -> list[Path]:
    """The result JSONs named directly, plus those found (non-recursively) in named folders, in order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [p for p in sorted(path.glob("*.json")) if SCHEMA in p.read_text(encoding="utf-8")[:200]]
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no evaluation result at {path}")
    return found


def _default_label(record: dict, path: Path) -> str:
    model = record.get("model", {})
    return model.get("stage") or Path(model.get("name_or_path") or path.stem).name


def result_row(path: str | Path, label: str | None = None) -> tuple[Row, dict[str, str]]:
    """A checkpoint's row (scores as percentages) and the titles of its benchmarks."""
    record = read_results(path)
    scores, stderrs, titles, metrics = {}, {}, {}, {}
    for name, bench in record["benchmarks"].items():
        metrics[name] = (str(bench.get("metric", "")).split(",")[0], bench.get("num_samples"))
        if not isinstance(bench.get("score"), int | float):
            raise ValueError(f"{path}: benchmarks.{name}.score is missing or not a number")
        scores[name] = 100.0 * bench["score"]
        if isinstance(bench.get("stderr"), int | float):
            stderrs[name] = 100.0 * bench["stderr"]
        titles[name] = bench.get("title") or name
    limit = (record.get("settings") or {}).get("limit")
    run = {"checkpoint": str((record.get("model") or {}).get("name_or_path", "")),
           "date": str(record.get("created", ""))[:10], "limit": "none (full sets)" if limit is None else str(limit)}
    return Row(label=label or _default_label(record, Path(path)), scores=scores, stderrs=stderrs, run=run,
               metrics=metrics, path=Path(path)), titles


def benchmark_order(rows: list[Row], titles: dict[str, str]) -> list[str]:
    """Benchmarks any checkpoint was scored on, in first-seen order (references add no columns)."""
    order = []
    for row in rows:
        for name in row.scores:
            if not row.reference and name not in order:
                order.append(name)
    return order or list(titles)


def shown_rows(rows: list[Row], names: list[str]) -> list[Row]:
    """Checkpoint rows, and the reference rows that report at least one of the benchmarks shown (the report
    has no numbers for the tiny tasks: an all-"–" row says nothing)."""
    return [row for row in rows if not row.reference or any(name in row.scores for name in names)]


def run_details(rows: list[Row], titles: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    """(per checkpoint: label, checkpoint, date, limit), (per benchmark: title, metric, samples per checkpoint)."""
    checkpoints = [row for row in rows if not row.reference]
    runs = [[row.label, row.run.get("checkpoint", ""), row.run.get("date", ""), row.run.get("limit", "")]
            for row in checkpoints]
    benchmarks = []
    for name in benchmark_order(rows, titles):
        metric = next((row.metrics[name][0] for row in checkpoints if name in row.metrics), "")
        samples = ", ".join(f"{row.label}: {row.metrics[name][1]}" for row in checkpoints if name in row.metrics)
        benchmarks.append([titles.get(name, name), metric, samples])
    return runs, benchmarks


def _samples_file(row: Row, benchmark: str) -> Path:
    return row.path.with_name(f"{row.path.stem}_samples") / f"{benchmark}.jsonl"


def compare_rows(rows: list[Row], pairs: list[tuple[str, str]] | None = None) -> tuple[list[Comparison], list[str]]:
    """Paired differences for each (first, second) pair of row labels (default: each checkpoint against the one
    before it, the order of the stages), on every benchmark both scored with per-sample files. Returns the
    comparisons and notes: one for each pair or benchmark that could not be compared (so the page says why), and
    for a DPO checkpoint how much it trained (so a null difference is read with its size)."""
    checkpoints = {row.label: row for row in rows if not row.reference}
    labels = list(checkpoints)
    pairs = list(zip(labels, labels[1:])) if pairs is None else pairs
    comparisons, notes = [], []
    for first, second in pairs:
        unknown = [label for label in (first, second) if label not in checkpoints]
        if unknown:
            raise ValueError(f"compare {first}:{second}: no result labelled {unknown}; labels are {labels}")
        a, b = checkpoints[first], checkpoints[second]
        unscored = []
        for benchmark in [name for name in a.scores if name in b.scores]:
            if not (_samples_file(a, benchmark).is_file() and _samples_file(b, benchmark).is_file()):
                unscored.append(benchmark)
                continue
            scores = [{item: [score] for item, score in item_scores(row.path.parent, benchmark).items()}
                      for row in (a, b)]
            diff = paired_difference(*scores)
            comparisons.append(Comparison(benchmark, first, second, diff, verdict(diff),
                                          significance_words(first, second, benchmark, diff)))
        training = preference_training(b)
        if training:
            notes.append(f"{second} {training}")
        if unscored:
            folders = sorted({str(_samples_file(row, "").parent) for row in (a, b)})
            notes.append(f"Not compared: {second} - {first} on {', '.join(unscored)}: no per-sample scores in "
                         f"{' or '.join(folders)}")
    return comparisons, notes


def preference_training(row: Row) -> str | None:
    """How much a DPO checkpoint was trained, from its manifest (run_dpo writes the pairs kept and TRL's log):
    a difference near zero after a few optimizer steps on a few pairs says the round was too small to move the
    model, not that preference learning failed, and the page should say which it was."""
    manifest = Path(row.run.get("checkpoint", "")) / "manifest.json"
    if not manifest.is_file():
        return None
    record = json.loads(manifest.read_text(encoding="utf-8"))
    logged = margin_curve(record.get("log_history", []))
    if "pairs" not in record or not logged:
        return None
    margin = window_mean(logged, 1.0)
    return (f"trained {logged[-1]['step']} optimizer steps on {record['pairs']['kept']} preference pairs; reward "
            f"margin {margin:+.4f} at the last logged steps (beta-scaled log-ratio, chosen minus rejected)")


def comparison_cells(comparisons: list[Comparison], titles: dict[str, str]) -> list[list[str]]:
    return [[titles.get(c.benchmark, c.benchmark), f"{c.second} - {c.first}", f"{100 * c.diff['mean']:+.1f}",
             f"{100 * c.diff['stderr']:.1f}", str(c.diff["items"]), c.verdict] for c in comparisons]


COMPARISON_HEADERS = ["Benchmark", "Comparison", "Difference (points)", "Stderr", "Items", "Verdict"]
PAIRED_NOTE = ("Paired differences on the same items (the later checkpoint minus the earlier); significant means "
               "at least two standard errors of the per-item difference from zero.")
REFERENCE_NOTE = "Italic rows are published numbers from the Phi-4 report (arXiv:2412.08905)."


def _cell(row: Row, name: str) -> str:
    if name not in row.scores:
        return "–"
    if name in row.stderrs:
        return f"{row.scores[name]:.1f} ± {row.stderrs[name]:.1f}"
    return f"{row.scores[name]:.1f}"


def to_markdown(rows: list[Row], titles: dict[str, str], comparisons: list[Comparison] | None = None,
                notes: list[str] | None = None) -> str:
    names = benchmark_order(rows, titles)
    shown = shown_rows(rows, names)
    lines = ["| Model | " + " | ".join(titles.get(n, n) for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for row in shown:
        label = f"*{row.label}*" if row.reference else row.label
        lines.append(f"| {label} | " + " | ".join(_cell(row, n) for n in names) + " |")
    lines.append("")
    reference = f" {REFERENCE_NOTE}" if any(row.reference for row in shown) else ""
    lines.append(f"Scores in percent, ± one standard error.{reference} – means not reported or not run.")
    runs, benchmarks = run_details(rows, titles)
    lines += ["", "| Model | Checkpoint | Date | Limit (samples per task) |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in runs]
    lines += ["", "| Benchmark | Metric | Samples scored |", "|---|---|---|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in benchmarks]
    if comparisons or notes:
        lines += ["", PAIRED_NOTE, "", "| " + " | ".join(COMPARISON_HEADERS) + " |", "|---|---|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in comparison_cells(comparisons or [], titles)]
        lines += [""] + [f"- {c.sentence}" for c in comparisons or []] + [f"- {n}" for n in notes or []]
    return "\n".join(lines) + "\n"


def bar_chart_png(name: str, title: str, rows: list[Row]) -> bytes:
    """One benchmark: a bar per row that has a score, stderr as error bars, reference rows in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [row for row in rows if name in row.scores]
    figure, axis = plt.subplots(figsize=(5.2, 3.0), dpi=100)
    positions = range(len(present))
    axis.bar(
        positions,
        [row.scores[name] for row in present],
        yerr=[row.stderrs.get(name, 0.0) for row in present],
        capsize=4,
        color=["#bbbbbb" if row.reference else f"C{i}" for i, row in enumerate(present)],
        edgecolor="#333333",
    )
    for position, row in zip(positions, present):
        top = row.scores[name] + row.stderrs.get(name, 0.0)  # above the error bar, not under it
        axis.text(position, top + 1, f"{row.scores[name]:.1f}", ha="center", va="bottom", fontsize=8)
    axis.set_xticks(list(positions), [row.label for row in present], rotation=20, ha="right", fontsize=8)
    axis.set_ylim(0, 110)
    axis.set_ylabel("score (%)")
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _html_table(headers: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body)
    return f'<div class="scroll"><table class="details"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _html_comparisons(comparisons: list[Comparison], notes: list[str], titles: dict[str, str]) -> str:
    if not comparisons and not notes:
        return ""
    cells = comparison_cells(comparisons, titles)
    body = "".join(
        f'<tr class="{c.verdict.replace(" ", "-")}">' + "".join(f"<td>{html.escape(x)}</td>" for x in row) + "</tr>"
        for c, row in zip(comparisons, cells, strict=True))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in COMPARISON_HEADERS)
    sentences = "".join(f"<li>{html.escape(c.sentence)}</li>" for c in comparisons)
    sentences += "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<h2>Paired differences</h2>\n<p>{html.escape(PAIRED_NOTE)}</p>\n"
            f'<div class="scroll"><table class="paired"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
            f"\n<ul>{sentences}</ul>\n")


def to_html(rows: list[Row], titles: dict[str, str], comparisons: list[Comparison] | None = None,
            notes: list[str] | None = None) -> str:
    names = benchmark_order(rows, titles)
    rows = shown_rows(rows, names)
    runs, benchmarks = run_details(rows, titles)
    details = (_html_table(["Model", "Checkpoint", "Date", "Limit (samples per task)"], runs)
               + _html_table(["Benchmark", "Metric", "Samples scored"], benchmarks))
    paired = _html_comparisons(comparisons or [], notes or [], titles)
    reference = " Italic grey rows are published numbers from the Phi-4 report (arXiv:2412.08905)." \
        if any(row.reference for row in rows) else ""
    header = "".join(f"<th>{html.escape(titles.get(n, n))}</th>" for n in names)
    body = "".join(
        f"<tr class=\"{'reference' if row.reference else 'checkpoint'}\"><td>{html.escape(row.label)}</td>"
        + "".join(f"<td>{html.escape(_cell(row, n))}</td>" for n in names) + "</tr>"
        for row in rows
    )
    charts = "".join(
        f"<figure><img alt=\"{html.escape(titles.get(n, n))} bar chart\" src=\"data:image/png;base64,"
        f"{base64.b64encode(bar_chart_png(n, titles.get(n, n), rows)).decode()}\"></figure>"
        for n in names
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>phi4-recipes leaderboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: sans-serif; margin: 24px; max-width: 100%; box-sizing: border-box; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin-bottom: 24px; }}
table.details td {{ text-align: left; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.reference td {{ color: #666; font-style: italic; }}
tr.significantly-better td {{ background: #e6f4e6; }}
tr.significantly-worse td {{ background: #fbe6e6; }}
table.paired td:last-child {{ text-align: left; font-weight: bold; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; max-width: 100%; }}
figure img {{ max-width: 100%; height: auto; display: block; }}
@media (max-width: 600px) {{ body {{ margin: 8px; }} }}
</style></head>
<body>
<h1>Leaderboard</h1>
<p>Scores in percent, &plusmn; one standard error.{reference}</p>
<div class="scroll"><table><thead><tr><th>Model</th>{header}</tr></thead><tbody>{body}</tbody></table></div>
{details}
{paired}<div class="charts">{charts}</div>
</body></html>
"""


def build_leaderboard(paths: list[str | Path], labels: list[str] | None = None,
                      reference: str | Path | None = REFERENCE_FILE) -> tuple[list[Row], dict[str, str]]:
    """Rows for every result file (in the order given), followed by the reference rows."""
    files = result_files(paths)
    if labels is not None and len(labels) != len(files):
        raise ValueError(f"got {len(labels)} labels for {len(files)} result files: {[str(f) for f in files]}")
    rows, titles = [], {}
    for index, path in enumerate(files):
        row, row_titles = result_row(path, labels[index] if labels else None)
        rows.append(row)
        titles.update(row_titles)
    if reference is not None:
        rows += load_reference(reference)
    return rows, titles
