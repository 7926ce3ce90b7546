"""Leaderboard from fixture results: Markdown table, HTML page with charts, and a real-browser screenshot."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phi4_recipes.evaluation.leaderboard import build_leaderboard, to_markdown

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "tests" / "fixtures" / "eval" / "results"
STAGES = ["base", "sft", "dpo_pts", "dpo_judge"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _stage_files() -> list[Path]:
    return [RESULTS / f"{stage}.json" for stage in STAGES]


def test_markdown_table_lists_each_stage_with_stderr_and_the_report_rows():
    rows, titles = build_leaderboard(_stage_files())
    table = to_markdown(rows, titles).splitlines()
    assert table[0].startswith("| Model | MMLU | GPQA | MATH | HumanEval | MGSM | SimpleQA | DROP | MMLU-Pro |")
    assert [line.split(" | ")[0].lstrip("| ") for line in table[2:9]] == STAGES + [
        "*phi-4 (report)*", "*phi-4 SFT (report)*", "*phi-4 SFT + PTS-DPO (report)*"]
    sft = json.loads((RESULTS / "sft.json").read_text())["benchmarks"]["gpqa"]
    assert f"{100 * sft['score']:.1f} ± {100 * sft['stderr']:.1f}" in table[3]
    assert "| *phi-4 (report)* | 84.8 | 56.1 | 80.4 | 82.6 | 80.6 | 3.0 | 75.5 | 70.4 | 82.8 | 75.4 | 63.0 |" in table
    # The SFT reference row has no MMLU number in the report: shown as missing, not as zero.
    assert table[7].startswith("| *phi-4 SFT (report)* | – | 47.3 |")


def test_labels_folders_and_no_reference(tmp_path):
    rows, _ = build_leaderboard([RESULTS], labels=["A", "B", "C", "D"], reference=None)
    # A folder contributes its result files in name order.
    assert [r.label for r in rows] == ["A", "B", "C", "D"] and not any(r.reference for r in rows)
    with pytest.raises(ValueError, match="got 2 labels for 4 result files"):
        build_leaderboard([RESULTS], labels=["A", "B"])


def test_bad_result_file_is_named(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(ValueError, match=r"broken\.json: not an evaluation result"):
        build_leaderboard([bad])
    missing_score = json.loads((RESULTS / "sft.json").read_text())
    del missing_score["benchmarks"]["math"]["score"]
    bad.write_text(json.dumps(missing_score))
    with pytest.raises(ValueError, match=r"broken\.json: benchmarks\.math\.score is missing"):
        build_leaderboard([bad])


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory) -> Path:
    """The documented command, run once: eval/leaderboard.py over the four stage results."""
    out = tmp_path_factory.mktemp("leaderboard")
    subprocess.run([sys.executable, str(REPO / "eval" / "leaderboard.py"), *map(str, _stage_files()),
                    "--out-dir", str(out)], check=True, capture_output=True, timeout=120)
    return out


def test_cli_writes_the_table_and_a_page_with_a_chart_per_benchmark(cli_output):
    rows, titles = build_leaderboard(_stage_files())
    assert (cli_output / "leaderboard.md").read_text() == to_markdown(rows, titles)
    page = (cli_output / "leaderboard.html").read_text()
    assert page.count('<img alt="') == 11 and page.count('<tr class="reference">') == 3
    assert page.count('src="data:image/png;base64,') == 11


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args],
        check=True, capture_output=True, text=True, timeout=120)


def test_page_states_metric_samples_limit_date_and_checkpoint_and_drops_empty_reference_rows(tmp_path):
    from phi4_recipes.evaluation.leaderboard import to_html

    tiny = json.loads((RESULTS / "sft.json").read_text())
    tiny["benchmarks"] = {"tiny_arithmetic": {**tiny["benchmarks"]["math"], "title": "Tiny arithmetic",
                                              "metric": "accuracy,none", "num_samples": 40}}
    tiny["settings"]["limit"] = 40
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    rows, titles = build_leaderboard([tmp_path / "tiny.json"])
    table, page = to_markdown(rows, titles), to_html(rows, titles)
    # The report has no tiny-task numbers: no all-"–" reference rows.
    assert "(report)" not in table and 'class="reference"' not in page
    assert "| sft | outputs/sft | 2025-01-01 | 40 |" in table
    assert "| Tiny arithmetic | accuracy | sft: 40 |" in table
    for text in ("accuracy", "outputs/sft", "2025-01-01", "Limit (samples per task)", "sft: 40"):
        assert text in page
    # Full benchmarks keep their report rows.
    full, full_titles = build_leaderboard(_stage_files())
    assert "none (full sets)" in to_markdown(full, full_titles)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", [1400, 420])
def test_html_renders_in_a_headless_browser_without_overflow(cli_output, tmp_path, width):
    screenshot = tmp_path / f"leaderboard_{width}.png"
    _chromium(tmp_path, f"--window-size={width},1800", f"--screenshot={screenshot}",
              (cli_output / "leaderboard.html").as_uri())
    from PIL import Image

    image = Image.open(screenshot).convert("RGB")
    assert image.size == (width, 1800)
    # A blank or failed page is (almost) one colour; the table and the charts put many colours on screen.
    colours = image.resize((width // 4, 450)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50
    # Nothing sticks out of a page `width` wide except inside the tables' own scroll boxes. (Headless chromium
    # keeps a viewport of at least 500 px for --dump-dom, so the page is pinned to `width` instead.)
    probe = tmp_path / "probe.html"
    probe.write_text((cli_output / "leaderboard.html").read_text().replace(
        "</head>", f"<style>html {{ width: {width}px; }}</style></head>").replace("</body>", """<script>
        const out = [...document.querySelectorAll("body *")].filter(e => !e.closest(".scroll") || e.matches(".scroll"))
          .map(e => Math.ceil(e.getBoundingClientRect().right));
        document.title = "right=" + Math.max(...out);</script></body>"""))
    right = int(_chromium(tmp_path, f"--window-size={width},1800", "--dump-dom", probe.as_uri()).stdout
                .split("<title>right=")[1].split("<")[0])
    assert right <= width, f"content reaches x={right} on a {width} px page"


def test_lm_eval_results_json_is_lm_eval_shaped(tmp_path):
    """lm-eval's own tools read the run's lm-eval JSON: task versions under `versions`, make_table works."""
    from lm_eval.utils import make_table

    from phi4_recipes.evaluation.lm_eval_runner import BenchmarkRun
    from phi4_recipes.evaluation.registry import load_registry
    from phi4_recipes.evaluation.results import lm_eval_results

    benchmarks = list(load_registry().values())[:2]
    runs = []
    for bench in benchmarks:
        task = bench.task
        output = {"results": {task: {"alias": task, f"{bench.metric},none": 0.5, f"{bench.metric}_stderr,none": 0.1}},
                  "versions": {task: 1.0}, "n-shot": {task: 0}, "configs": {task: {"task": task}},
                  "higher_is_better": {task: {bench.metric: True}}, "n-samples": {task: {"original": 9, "effective": 5}},
                  "config": {"model": "hf", "limit": 5}, "samples": {task: [{"doc_id": 0}]}, "lm_eval_version": "0.4.13"}
        runs.append(BenchmarkRun(benchmark=bench, score=0.5, stderr=0.1, num_fewshot=0, num_samples=5, gen_kwargs={},
                                 output=output))
    merged = lm_eval_results(runs)
    assert set(merged["results"]) == {b.task for b in benchmarks} and "samples" not in merged
    assert merged["versions"] == {b.task: 1.0 for b in benchmarks}  # task versions, as lm-eval writes them
    assert merged["config"]["limit"] == 5 and merged["n-shot"] and merged["configs"]
    table = make_table(json.loads(json.dumps(merged)))
    assert all(b.task in table for b in benchmarks)
