"""Leaderboard from fixture results: Markdown table, HTML page with charts, and a real-browser screenshot."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phi4_recipes.evaluation.leaderboard import build_leaderboard, compare_rows, to_markdown

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
    comparisons, notes = compare_rows(rows)
    assert comparisons == [] and len(notes) == 3, "no per-sample files beside the fixtures: said, not guessed"
    assert (cli_output / "leaderboard.md").read_text() == to_markdown(rows, titles, comparisons, notes)
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
    # The report has no tiny-task numbers: no all-"–" reference rows, and no words about them.
    assert "(report)" not in table and 'class="reference"' not in page
    assert "Italic" not in table and "Italic" not in page and "Paired differences" not in page
    assert "| sft | outputs/sft | 2025-01-01 | 40 |" in table
    assert "| Tiny arithmetic | accuracy | sft: 40 |" in table
    for text in ("accuracy", "outputs/sft", "2025-01-01", "Limit (samples per task)", "sft: 40"):
        assert text in page
    # Full benchmarks keep their report rows.
    full, full_titles = build_leaderboard(_stage_files())
    assert "none (full sets)" in to_markdown(full, full_titles)
    assert "Italic rows are published" in to_markdown(full, full_titles)
    assert "Italic grey rows are published" in to_html(full, full_titles)


def _tiny_run(folder: Path, stage: str, correct: set[int], items: int = 200) -> Path:
    """A run_eval result as `make tiny` lays it out: <run>/eval_<stage>/eval.json and eval_samples/."""
    record = json.loads((RESULTS / "sft.json").read_text())
    record["model"] = {"name_or_path": f"outputs/tiny/{stage}", "stage": stage}
    record["benchmarks"] = {"tiny_arithmetic": {**record["benchmarks"]["math"], "title": "Tiny arithmetic",
                                                "metric": "accuracy,none", "num_samples": items,
                                                "score": len(correct) / items, "stderr": 0.03}}
    out = folder / f"eval_{stage}"
    (out / "eval_samples").mkdir(parents=True)
    (out / "eval.json").write_text(json.dumps(record))
    (out / "eval_samples" / "tiny_arithmetic.jsonl").write_text("".join(
        json.dumps({"doc_id": i, "accuracy": float(i in correct)}) + "\n" for i in range(items)))
    return out / "eval.json"


def test_page_shows_the_paired_differences_and_their_verdicts(tmp_path):
    """The command `make tiny` runs: each stage against the one before it, on the same items."""
    files = [_tiny_run(tmp_path, "base", set()), _tiny_run(tmp_path, "sft", set(range(60))),
             _tiny_run(tmp_path, "dpo_pts", set(range(61)))]
    subprocess.run([sys.executable, str(REPO / "eval" / "leaderboard.py"), *map(str, files),
                    "--labels", "base,sft,dpo_pts", "--out-dir", str(tmp_path / "lb")],
                   check=True, capture_output=True, timeout=120)
    table = (tmp_path / "lb" / "leaderboard.md").read_text()
    page = (tmp_path / "lb" / "leaderboard.html").read_text()
    assert "| Tiny arithmetic | sft - base | +30.0 | 3.2 | 200 | significantly better |" in table
    assert "| Tiny arithmetic | dpo_pts - sft | +0.5 | 0.5 | 200 | not significant |" in table
    assert ("sft is significantly better than base on tiny_arithmetic (200 items, 1 seed): +30.0 ± 3.2 points "
            "(|z| = 9.2).") in page
    assert page.count('<tr class="significantly-better">') == 1 and page.count('<tr class="not-significant">') == 1
    assert "Italic" not in page


def test_comparisons_without_per_sample_scores_are_named_not_guessed(tmp_path):
    rows, _ = build_leaderboard(_stage_files()[:2], reference=None)
    comparisons, notes = compare_rows(rows)
    assert comparisons == [] and notes == [f"Not compared: sft - base on {', '.join(rows[0].scores)}: no per-sample scores in "
                                           f"{RESULTS / 'base_samples'} or {RESULTS / 'sft_samples'}"]
    with pytest.raises(ValueError, match=r"compare base:rl: no result labelled \['rl'\]"):
        compare_rows(rows, [("base", "rl")])


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


def test_dpo_margins_are_read_as_tenths_of_the_logged_steps():
    from phi4_recipes.evaluation.dpo_log import margin_curve, window_mean

    history = [{"step": s, "rewards/margins": float(s), "loss": 0.6} for s in range(1, 21)] + [{"train_loss": 0.5}]
    curve = margin_curve(history)
    assert [row["step"] for row in curve] == list(range(1, 21)) and set(curve[0]) == {"step", "rewards/margins", "loss"}
    assert window_mean(curve, 0.0) == 1.5 and window_mean(curve, 1.0) == 19.5 and window_mean(curve, 0.5) == 11.5
    assert window_mean(curve[:3], 1.0) == 3.0  # fewer than ten steps: the last one
    with pytest.raises(ValueError, match="no logged DPO steps"):
        window_mean([], 1.0)
