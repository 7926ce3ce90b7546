"""bench/tiny_round1.py: make tiny's round-1 rate is the one validation chose at make tiny's own pair count.

The runs are the bench's job; here: the choice rule on recorded scores, the recipe the bench trains with is the
pipeline's own (only the rate and the loss weights change), and the main job adopts the recorded choice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import tiny_round1  # noqa: E402


def _run(work: Path, seed: int, sft: list[int], settings: dict[str, list[int]]) -> None:
    work.mkdir(parents=True)
    items = [f"item{i}" for i in range(len(sft))]
    record = {"seed": seed, "pairs": 40, "benchmark": "validation", "sft_scores": dict(zip(items, sft, strict=True)),
              "settings": {}}
    for text, scores in settings.items():
        setting = tiny_round1.Setting.parse(text)
        record["settings"][setting.name] = {"setting": setting.__dict__, "scores": dict(zip(items, scores, strict=True))}
    (work / "validation.json").write_text(json.dumps(record))


def test_the_best_validation_mean_wins_and_a_tie_goes_to_the_smaller_rate(tmp_path):
    sft = [1, 1, 0, 0]
    _run(tmp_path / "a", 1, sft, {"3e-4,0.1,1,,16": [1, 0, 0, 0], "1e-4,0.1,1,,16": [1, 1, 0, 0], "1e-5,0.1,1,,16": [1, 1, 0, 0]})
    _run(tmp_path / "b", 2, sft, {"3e-4,0.1,1,,16": [1, 1, 1, 0], "1e-4,0.1,1,,16": [1, 1, 0, 0], "1e-5,0.1,1,,16": [1, 1, 0, 0]})
    out = tmp_path / "choice.md"
    tiny_round1.report(argparse.Namespace(works=[str(tmp_path / "a"), str(tmp_path / "b")], out=str(out)))
    chosen = json.loads(Path(f"{out}.chosen.json").read_text())
    assert chosen["lr"] == 1e-5  # 3e-4 averages 0 like the others (-1 and +1); the tie goes to the smallest rate
    assert "| lr0.0003_b0.1_a1_lora16 | +0.0 ± " in out.read_text()


def test_the_bench_trains_the_pipelines_recipe_at_the_setting(tmp_path, monkeypatch):
    stages = []
    monkeypatch.setattr(tiny_round1, "run_stage", lambda command, log, threads: stages.append(command))
    args = argparse.Namespace(run="outputs/tiny_s7", seed=7, threads=1)
    tiny_round1.train(args, tmp_path, tiny_round1.Setting.parse("3e-5,0.1,1,,16"))
    recipe = yaml.safe_load(Path(stages[0][1]).read_text())
    base = yaml.safe_load((ROOT / tiny_round1.RECIPE).read_text())
    changed = {key for key in recipe if recipe[key] != base.get(key)}
    assert changed <= {"model_name_or_path", "datasets", "output_dir", "learning_rate", "seed", "loss_weights"}
    assert recipe["learning_rate"] == 3e-5 and recipe["seed"] == 7 and recipe["num_train_epochs"] == 1
    assert recipe["datasets"] == [{"path": "json", "data_files": "outputs/tiny_s7/pts/pairs.jsonl"}]


def test_make_tiny_adopts_the_rate_validation_chose():
    chosen = json.loads((ROOT / "bench" / "tiny_round1.md.chosen.json").read_text())
    recipe = yaml.safe_load((ROOT / "recipes" / "tiny" / "dpo_pts.yaml").read_text())
    assert recipe["learning_rate"] == chosen["lr"] and recipe["lora_r"] == chosen["lora_r"] and recipe["beta"] == chosen["beta"]
    assert recipe["loss_weights"] == [1.0, chosen["rpo_alpha"]]
