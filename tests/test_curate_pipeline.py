"""Recipes, config errors, and the whole datatrove pipeline on the fixtures with 2 local workers."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from phi4_recipes.configs import RecipeError, parse_recipe
from phi4_recipes.curate.options import CurateConfig
from phi4_recipes.curate.pipeline import build_executors
from phi4_recipes.curate.steps import OUTPUT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "curate"
FIXTURES = ROOT / "tests" / "fixtures"


def parse_curate(*argv) -> CurateConfig:
    (config,) = parse_recipe(CurateConfig, argv=[str(arg) for arg in argv])
    return config


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_parse(recipe, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = parse_curate(recipe, "--input_dir", FIXTURES / "html")  # local/slurm name the user's own folders
    assert config.tasks >= 1 and config.output_dir


def test_slurm_recipe_builds_chained_slurm_executors(tmp_path, monkeypatch):
    from datatrove.executor import SlurmPipelineExecutor

    monkeypatch.chdir(ROOT)
    config = parse_curate(RECIPES / "slurm.yaml", "--output_dir", tmp_path / "out", "--input_dir", FIXTURES / "html")
    executors = build_executors(config, quality_model_path=str(tmp_path / "model.pkl"))
    assert [type(e) for e in executors] == [SlurmPipelineExecutor] * 3
    assert [e.tasks for e in executors] == [2000, 1, 2000]
    assert executors[2].depends is executors[1] and executors[1].depends is executors[0]


def test_unknown_keys_and_bad_values_name_the_key_and_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    base = f"input_dir: {tmp_path}\noutput_dir: b\n"
    recipe.write_text(base + "workerz: 3\n")
    with pytest.raises(RecipeError, match=r"r\.yaml: unknown key 'workerz' \(did you mean 'workers'\?\)"):
        parse_curate(recipe)
    recipe.write_text(base + "corruption: {min_char: 3}\n")
    with pytest.raises(RecipeError, match=r"r\.yaml.*unknown threshold 'min_char'"):
        parse_curate(recipe)
    recipe.write_text(base + "tasks: two\n")
    with pytest.raises(RecipeError, match=r"r\.yaml: key 'tasks' expects int, got 'two'"):
        parse_curate(recipe)
    recipe.write_text("input_dir: no/such/folder\noutput_dir: b\n")
    with pytest.raises(RecipeError, match=r"r\.yaml.*'input_dir': no/such/folder does not exist"):
        parse_curate(recipe)
    recipe.write_text(base)
    with pytest.raises(RecipeError, match=r"command line: unknown option '--workerz' \(did you mean 'workers'\?\)"):
        parse_curate(recipe, "--workerz", "1")


def test_cli_arguments(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"input_dir: {tmp_path}\noutput_dir: b\n")
    config = parse_curate(recipe, "--tasks", "4", "--languages", "en", "fr")
    assert (config.tasks, config.languages) == (4, ["en", "fr"])
    assert parse_curate("--config", recipe, "--extract_timeout_s", "2.5").extract_timeout_s == 2.5
    with pytest.raises(SystemExit):
        parse_curate(recipe, "--tasks")


def _stats(out: Path, stage: str) -> dict:
    merged = json.loads((out / "curate_stats.json").read_text())
    return {name.split(": ", 1)[1]: counters for name, counters in merged[stage].items()}


def test_tiny_recipe_end_to_end_with_two_workers(tmp_path):
    inputs = tmp_path / "html"
    shutil.copytree(FIXTURES / "html" / "pages", inputs / "pages")
    shutil.copytree(FIXTURES / "html" / "extra", inputs / "extra")
    (inputs / "extra" / "huge_10mb.html").write_text("<html><body>" + "<p>row</p>" * 1_000_000 + "</body></html>")
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "src" / "phi4_recipes" / "run_curate.py"), str(RECIPES / "tiny.yaml"),
               "--input_dir", str(inputs), "--output_dir", str(out), "--workers", "2", "--tasks", "2",
               "--long_context_tokens", "150", "--extra_long_context_tokens", "300"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]

    reader = _stats(out, "filter")["📄 HTML files"]
    assert (reader["skipped_too_large"], reader["skipped_binary"], reader["skipped_empty"]) == (1, 1, 1)
    assert _stats(out, "filter")["🎓 quality classifier"]["dropped_low_quality"] >= 1
    assert _stats(out, "filter")["🧼 decontamination"]["dropped_contaminated"] == 1
    dedup = _stats(out, "dedup_filter")["🫂 dedup filter"]
    assert (dedup["dropped_exact_duplicate"], dedup["dropped_near_duplicate"]) == (1, 1)

    rows = [row for path in sorted((out / "data").glob("*/*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    ids = [row["id"] for row in rows]
    # 34 pages + 6 readable extras (9 minus binary, empty, 10 MB) - spam - contaminated - 2 duplicates
    assert len(ids) == len(set(ids)) == 36
    assert not any("spam" in i or "contaminated" in i for i in ids)
    assert sum("katex_rope" in i for i in ids) == 1 and sum("news_storm" in i or "news_en_storm" in i for i in ids) == 1
    for row in rows:
        assert (out / "data" / row["language_route"]).is_dir()
        gold = FIXTURES / "html" / "expected" / (Path(row["id"]).stem + ".json")
        if gold.exists():
            assert row["language"] == json.loads(gold.read_text())["lang"], row["id"]
    cafe = next(row for row in rows if "cp1252" in row["id"])
    assert "Le café « Chez Léa »" in cafe["text"] and cafe["language"] == "fr"

    long_rows = [r for p in sorted((out / "long_context").glob("*/*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert long_rows and all(r["token_count"] > 150 for r in long_rows)
    assert {r["long_context_tier"] for r in long_rows} <= {"8k+", "16k+"}
    assert len(long_rows) == sum(r["long_context_tier"] != "short" for r in rows)
    assert json.loads((out / "quality_metrics.json").read_text())["precision"] > 0.8
    dropped = [json.loads(line) for path in (out / "dropped").glob("*/*.jsonl.gz")
               for line in __import__("gzip").open(path, "rt")]
    assert {d["metadata"]["filter_reason"] for d in dropped} >= {"low_quality", "contaminated", "exact_duplicate",
                                                                  "near_duplicate"}


@pytest.mark.parametrize("timeout_s", [None, 5.0])
def test_input_filter_and_extractor_skip_bad_documents_with_reasons(timeout_s):
    from datatrove.data import Document
    from datatrove.pipeline.extractors.base import BaseExtractor

    from phi4_recipes.curate.steps import HtmlExtractStep, HtmlInputFilter

    docs = [Document(text="<p>" + "A readable sentence about rivers and valleys. " * 5 + "</p>", id="ok"),
            Document(text="\x00\x01\x02\x03" * 200, id="binary"),
            Document(text="<p>" + "x" * 2000 + "</p>", id="large"),
            Document(text="<script>only()</script>", id="empty")]
    check, extract = HtmlInputFilter(max_chars=1000), HtmlExtractStep(timeout_s=timeout_s)
    # The extractor is a stock datatrove extractor: only extract() is ours, the run loop and sandbox are datatrove's.
    assert isinstance(extract, BaseExtractor) and "run" not in vars(HtmlExtractStep)
    kept = list(extract.run(check.run(iter(docs))))
    assert [d.id for d in kept] == ["ok"] and kept[0].text.startswith("A readable sentence")
    assert kept[0].metadata["html_chars"] > 0
    checked, extracted = check.stats.to_dict()["stats"], extract.stats.to_dict()["stats"]
    assert {k: checked[k] for k in ("dropped_binary", "dropped_too_large")} == {"dropped_binary": 1,
                                                                                  "dropped_too_large": 1}
    assert (extracted["extracted"], extracted["dropped"]) == (2, 1)


def test_run_that_drops_every_document_finishes_with_empty_outputs_and_stats(tmp_path):
    from phi4_recipes.curate.pipeline import run_curation

    inputs = tmp_path / "html"
    inputs.mkdir()
    for name in ("news_en_storm", "wiki_prime"):
        shutil.copy(FIXTURES / "html" / "pages" / f"{name}.html", inputs)
    out = tmp_path / "out"
    # No page is in this language, so the language filter drops them all.
    config = parse_curate(RECIPES / "tiny.yaml", "--input_dir", inputs, "--output_dir", out, "--workers", "1",
                          "--tasks", "1", "--languages", "[xx]")
    run_curation(config)
    stats = json.loads((out / "curate_stats.json").read_text())
    assert set(stats) == {"filter", "dedup_cluster", "dedup_filter"}
    assert _stats(out, "filter")["🌍 fastText lid.176"]["dropped_language_not_kept"] == 2
    assert list((out / "data").glob("**/*.parquet")) == [] and (out / "data").is_dir()
