"""A synth run killed with SIGKILL mid-shard, torn last line included, resumes to byte-identical shards and
data: nothing lost, nothing written twice. Two datatrove tasks together hold exactly what one task holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from phi4_recipes.data.tiny import arithmetic_problems
from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.standins.synth_server import StandinServer
from synth_helpers import run_workflow

REPO = Path(__file__).resolve().parents[1]
ROWS = [{k: p[k] for k in ("id", "question", "answer")} for p in arithmetic_problems("train", 24)]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_9_mid_run_resumes_to_byte_identical_shards(tmp_path):
    options = {"workflow_options": {"num_answers": 3}}
    with StandinServer() as fast:
        reference = run_workflow(tmp_path, "plurality", ROWS, name="reference", backend="openai",
                                 model_name_or_path="standin", base_url=fast.base_url, **options)
    data = write_jsonl(tmp_path / "input.jsonl", ROWS)
    out = tmp_path / "killed"
    shard = out / "shard-00000-of-00001.jsonl"
    with StandinServer(delay=0.1) as slow:
        argv = [sys.executable, str(REPO / "src/phi4_recipes/run_synth.py"), "--workflow", "plurality",
                "--dataset_name", str(data), "--output_dir", str(out), "--backend", "openai",
                "--model_name_or_path", "standin", "--base_url", slow.base_url]
        # workflow_options is a mapping, which the command line cannot carry: pass it in a recipe
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text("workflow_options: {num_answers: 3}\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
        process = subprocess.Popen([*argv[:2], str(recipe), *argv[2:]], env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _lines(shard) < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = _lines(shard)
    assert 5 <= done < len(ROWS), done
    with open(shard, "ab") as handle:  # what a kill between write and newline leaves behind
        handle.write(b'{"id": "arith-train-torn", "rows": [')
    with StandinServer() as fast:
        resumed = run_workflow(tmp_path, "plurality", ROWS, name="killed", backend="openai",
                               model_name_or_path="standin", base_url=fast.base_url, **options)
    assert shard.read_bytes() == (tmp_path / "reference" / shard.name).read_bytes()
    assert (out / "data.jsonl").read_bytes() == (tmp_path / "reference" / "data.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in shard.read_text().splitlines()]
    assert sorted(ids) == sorted(r["id"] for r in ROWS)
    assert resumed["report"] == reference["report"]


def test_two_tasks_hold_what_one_task_holds(tmp_path):
    with StandinServer() as server:
        via = {"backend": "openai", "model_name_or_path": "standin", "base_url": server.base_url}
        whole = run_workflow(tmp_path, "plurality", ROWS, name="whole", **via)
        split = run_workflow(tmp_path, "plurality", ROWS, name="split", tasks=2, **via)
    assert len(list((tmp_path / "split").glob("shard-*-of-00002.jsonl"))) == 2
    assert split["data"] == whole["data"] and split["report"] == whole["report"]
