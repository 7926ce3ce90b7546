"""run_judge killed with SIGKILL mid-run (and left with a torn last line) finishes on rerun with shards and
pairs byte-identical to an uninterrupted run: nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from judge_fixtures import TINY_KEY_ENV, tiny_responders, write_prompts, write_recipe
from phi4_recipes.configs import parse_recipe
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.run_judge import main as run_judge
from phi4_recipes.standins.judge_server import RuleJudgeServer

pytest_plugins = ["generation_fixtures"]

REPO = Path(__file__).resolve().parents[1]
PROMPTS = 8


def _recipe(tmp_path: Path, name: str, prompts: Path, judge_url: str, tiny_url: str) -> Path:
    return write_recipe(tmp_path / f"{name}.yaml", dataset_name=str(prompts), include_rai_prompts=False,
                        responders=tiny_responders(tiny_url), judge_model="rule-judge", judge_base_url=judge_url,
                        judge_api_key_env="PHI4_TEST_NO_JUDGE_KEY", max_concurrency=2, prompts_per_batch=2,
                        output_dir=str(tmp_path / name), seed=3)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill9_then_rerun_gives_byte_identical_shards(tmp_path, server, monkeypatch):
    from generation_fixtures import SERVER_API_KEY

    monkeypatch.setenv(TINY_KEY_ENV, SERVER_API_KEY)
    prompts = write_prompts(tmp_path / "prompts.jsonl",
                            [{"id": f"p{i}", "question": f"Tell me about the number {i}."} for i in range(PROMPTS)])
    env = {**os.environ, "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    # The judge's latency keeps the run going long enough to be killed between and inside batches.
    with RuleJudgeServer(latency_s=0.25) as judge:
        (reference_args,) = parse_recipe(JudgeScriptArguments, argv=[str(
            _recipe(tmp_path, "reference", prompts, judge.base_url, server.base_url))])
        run_judge(reference_args)

        recipe = _recipe(tmp_path, "killed", prompts, judge.base_url, server.base_url)
        shard = tmp_path / "killed" / "shard-00000-of-00001.jsonl"
        command = [sys.executable, str(REPO / "src" / "phi4_recipes" / "run_judge.py"), str(recipe)]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _lines(shard) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is not None:
            raise AssertionError(f"the run ended (rc {process.returncode}) before it could be killed: "
                                 f"{process.stderr.read().decode()[-3000:]}")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed_at = _lines(shard)
        assert 0 < killed_at < PROMPTS
        with open(shard, "ab") as handle:  # what a write torn by the kill leaves behind
            handle.write(b'{"prompt_id":"p7","responses":[{"respon')

        rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "unfinished line" in rerun.stdout

    for name in ("shard-00000-of-00001.jsonl", "pairs.jsonl", "judge_stats.json"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert _lines(shard) == PROMPTS
