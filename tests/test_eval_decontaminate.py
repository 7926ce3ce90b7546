"""n-gram overlap between training data and benchmark test sets (eval/decontaminate.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phi4_recipes.evaluation.contamination import benchmark_items, overlap_report, training_texts
from phi4_recipes.evaluation.lm_eval_runner import build_task_manager
from phi4_recipes.evaluation.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "data" / "tiny" / "arithmetic_train.jsonl"


@pytest.fixture(scope="module")
def ifeval_items():
    registry = load_registry()
    task_manager = build_task_manager([registry["tiny_ifeval"]], [])
    return benchmark_items(registry["tiny_ifeval"], task_manager)


def test_planted_test_items_are_found_and_only_they(tmp_path, ifeval_items):
    texts, ids = ifeval_items
    assert len(texts) == 20 and ids[0] == "phi4_tiny_ifeval/0"
    clean_texts, clean_ids = training_texts(str(TRAIN))
    assert overlap_report(clean_texts, clean_ids, {"tiny_ifeval": ifeval_items})["tiny_ifeval"]["contaminated_items"] == 0
    # Plant items 3 and 11 inside chat-format training rows, reworded only in case and punctuation.
    rows = [json.loads(line) for line in TRAIN.read_text().splitlines()[:50]]
    rows[7]["messages"][1]["content"] += " " + texts[3].upper().replace(".", " ;")
    rows[20]["messages"][0]["content"] = "Prefix words here. " + texts[11]
    planted = tmp_path / "train.jsonl"
    planted.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = overlap_report(*training_texts(str(planted)), {"tiny_ifeval": ifeval_items}, n=13)["tiny_ifeval"]
    assert report["contaminated_items"] == 2 and report["training_rows_with_overlap"] == 2
    assert [e["item"] for e in report["examples"]] == [ids[3], ids[11]]
    assert report["examples"][0]["training_rows"] == [rows[7]["id"]]


def test_cli_reports_overlap_of_the_tiny_splits(tmp_path):
    out = tmp_path / "report.json"
    subprocess.run([sys.executable, str(REPO / "eval" / "decontaminate.py"), "--train", str(TRAIN),
                    "--benchmarks", "tiny_arithmetic", "--n", "13", "--out", str(out)],
                   check=True, capture_output=True, timeout=180)
    report = json.loads(out.read_text())["tiny_arithmetic"]
    assert report["n"] == 13 and report["test_items"] == 500
    # The held-out problems share templates with the training ones; the CLI must agree with the library.
    registry = load_registry()
    items = benchmark_items(registry["tiny_arithmetic"], build_task_manager([registry["tiny_arithmetic"]], []))
    assert report == overlap_report(*training_texts(str(TRAIN)), {"tiny_arithmetic": items})["tiny_arithmetic"]
    assert len(report["examples"]) == min(report["contaminated_items"], 20)


def test_training_data_must_be_a_known_format(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("a,b\n")
    with pytest.raises(ValueError, match=r"train\.csv: training data must be \.jsonl, \.json or \.parquet"):
        training_texts(str(bad))
