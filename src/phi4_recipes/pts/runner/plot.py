"""A picture of one search: estimated p(success) along the response, pivotal tokens marked.

The x axis is the prefix length ``k`` (0 = the query alone, ``L`` = the whole response); token ``i`` sits
between ``k = i`` and ``k = i + 1``, which is where its text goes when the response is short enough to
label. Points are the search estimates with Wilson intervals; hollow points are the fresh confirmation
rollouts; a red arrow is a pivot, from p before the token to p after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from ..result import PTSResult  # noqa: E402
from ..stats import wilson_interval  # noqa: E402
from .records import QuestionRecord  # noqa: E402

MAX_LABELLED_TOKENS = 64


def _label(text: str) -> str:
    # Byte-level tokens can be control characters, which no font draws; show them escaped.
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown or "·"


def _series(counts: list[tuple[int, int, int]], z: float):
    """(position, successes, trials) -> x, p and asymmetric Wilson error bars of the estimated prefixes."""
    xs, ps, low_err, high_err = [], [], [], []
    for position, successes, trials in counts:
        if trials:
            p = successes / trials
            low, high = wilson_interval(successes, trials, z)
            xs.append(position)
            ps.append(p)
            low_err.append(max(0.0, p - low))
            high_err.append(max(0.0, high - p))
    return xs, ps, [low_err, high_err]


def plot_search(result: PTSResult, token_texts: Sequence[str], path: str | Path, title: str) -> Path:
    """Write a PNG of one search result to ``path``.

    :param result: the search result.
    :param token_texts: the text of each response token (for tick labels).
    :param path: the PNG to write (folders are created).
    :param title: shown above the plot (question id, p(query), verdict).
    """
    length = len(result.response_ids)
    z = result.config.confidence_z
    figure, axes = plt.subplots(figsize=(min(18.0, 4.0 + 0.22 * length), 4.2))
    xs, ps, errors = _series([(e.position, e.successes, e.trials) for e in result.estimates], z)
    axes.errorbar(xs, ps, yerr=errors, fmt="o", color="tab:blue", ms=4, capsize=2, label="search estimate")
    confirmed = [(e.position, e.confirm_successes, e.confirm_trials) for e in result.estimates]
    cx, cps, cerrors = _series(confirmed, z)
    if cx:
        axes.errorbar(cx, cps, yerr=cerrors, fmt="o", mfc="none", color="tab:green", ms=6, capsize=2,
                      label="confirmation")
    final = 1.0 if result.response_correct else 0.0
    axes.plot([length], [final], marker="*", color="black", ms=11, ls="none", label="oracle on full response")
    for pivot in result.pivots:
        i = pivot.position
        axes.axvspan(i, i + 1, color="tab:red", alpha=0.12)
        axes.annotate("", xy=(i + 1, pivot.p_after), xytext=(i, pivot.p_before),
                      arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 2})
    if length <= MAX_LABELLED_TOKENS:
        axes.set_xticks([i + 0.5 for i in range(length)])
        axes.set_xticklabels([_label(t) for t in token_texts], rotation=90, fontsize=8)
        axes.set_xlabel("response token (between prefix lengths k and k+1)")
    else:
        axes.set_xlabel("prefix length k (tokens)")
    axes.set_xlim(-0.5, length + 0.5)
    axes.set_ylim(-0.05, 1.05)
    axes.set_ylabel("p(success | query + prefix)")
    axes.axhline(result.p_query, color="gray", lw=0.6, ls=":")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="best", fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_records(records: list[QuestionRecord], tokenizer, folder: str | Path, limit: int) -> list[Path]:
    """Plot up to ``limit`` searched responses, those with pivots first, in a stable order."""
    searched = [(record, s) for record in records for s in record.responses if s.result.status == "searched"]
    searched.sort(key=lambda rs: (not rs[1].result.pivots, rs[0].question_id, rs[1].response_index))
    written = []
    for record, s in searched[:limit]:
        result = s.result
        texts = [tokenizer.decode([t], skip_special_tokens=False) for t in result.response_ids]
        title = (f"{record.question_id}  response {s.response_index}  "
                 f"p(query) at filter={result.p_query:.2f}  correct={result.response_correct}  "
                 f"pivots={len(result.pivots)}")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in record.question_id)
        written.append(plot_search(result, texts, Path(folder) / f"{safe}-r{s.response_index}.png", title))
    return written
