"""bench/dpo_effect.py's data for each arm and its choice of settings (the runs themselves are the bench's job).

The arms are only comparable if their data is built as the issue asks: the negative control keeps PTS's prefixes and
tokens and loses only the direction, the full-response pairs put a correct answer above an incorrect one, rejection
sampling keeps only correct answers, and the questions kept for held-out margins never reach training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import dpo_effect  # noqa: E402


def _pts_pair(question: str, position: int) -> dict:
    return {"question_id": question, "position": position, "prompt": f"<|im_start|>user {question}<|im_sep|>1",
            "chosen": " 4", "rejected": " 5", "prompt_ids": [1, 2, position], "chosen_ids": [40], "rejected_ids": [50]}


def _work(tmp_path: Path, questions: list[str]) -> Path:
    (tmp_path / "pts").mkdir()
    pairs = [_pts_pair(q, k) for q in questions for k in range(3)]
    (tmp_path / "pts" / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return tmp_path


def test_each_arm_gets_its_own_data_and_margin_questions_stay_out_of_training(tmp_path):
    questions = [f"q{i}" for i in range(60)]
    work = _work(tmp_path, questions)
    samples = [{"id": q, "question": f"What is {q}?", "answer": "7",
                "responses": [{"text": "r7", "correct": True}, {"text": "r7", "correct": True},
                              {"text": "w6", "correct": False}, {"text": "w8", "correct": False}]} for q in questions]
    data = dpo_effect.arm_datasets(argparse.Namespace(seed=3), work, samples)
    kept_out = {q for q in questions if dpo_effect.held_out_for_margins(q)}
    assert 0 < len(kept_out) < len(questions) // 4
    assert {p["question_id"] for p in data["margin_pairs"]} == kept_out

    rows = {arm: [json.loads(line) for line in Path(data[arm]["file"]).read_text().splitlines()] for arm in dpo_effect.ARMS}
    assert not kept_out & {r["question_id"] for r in rows["pts"] + rows["random"]}
    assert not kept_out & {r["prompt"][0]["content"].split()[-1][:-1] for r in rows["full"]}
    # The control: the same prefixes and the same two tokens, the side chosen by a coin (text and ids together).
    swapped = 0
    for pts, control in zip(rows["pts"], rows["random"], strict=True):
        assert (pts["prompt_ids"], pts["position"]) == (control["prompt_ids"], control["position"])
        assert {pts["chosen"], pts["rejected"]} == {control["chosen"], control["rejected"]}
        flipped = control["chosen_ids"] != pts["chosen_ids"]
        assert flipped == (control["chosen"] != pts["chosen"])
        swapped += flipped
    assert 0.25 < swapped / len(rows["pts"]) < 0.75
    # Full responses: each distinct wrong answer below a correct one; RFT: distinct correct answers only.
    assert len(rows["full"]) == 2 * (len(questions) - len(kept_out))
    assert all(r["chosen"][0]["content"] == "r7" and r["rejected"][0]["content"] in {"w6", "w8"} for r in rows["full"])
    assert [r["messages"][1]["content"] for r in rows["rft"]] == ["r7"] * (len(questions) - len(kept_out))


def test_settings_parse_and_only_settings_every_seed_ran_are_compared():
    assert dpo_effect.Setting.parse("1e-5,0.2,1") == dpo_effect.Setting(1e-5, 0.2, 1.0)
    assert dpo_effect.Setting.parse("2e-6").name == "lr2e-06_b0.1_a0"
    with pytest.raises(ValueError, match="lr\\[,beta"):
        dpo_effect.Setting.parse("1,2,3,4")

    def seed_run(arm_scores: dict) -> dict:
        return {"sft_scores": {"a": 0.0, "b": 1.0, "c": 0.0},
                "arms": {key: {"scores": scores} for key, scores in arm_scores.items()}}

    runs = [seed_run({"pts/x": {"a": 1.0, "b": 1.0, "c": 0.0}, "full/x": {"a": 0.0, "b": 1.0, "c": 0.0}}),
            seed_run({"pts/x": {"a": 1.0, "b": 1.0, "c": 1.0}})]
    differences = dpo_effect.arm_differences(runs)
    assert list(differences) == ["pts/x"]  # full/x ran on one seed only
    assert differences["pts/x"]["mean"] == pytest.approx(0.5) and differences["pts/x"]["per_seed"] == [
        pytest.approx(1 / 3), pytest.approx(2 / 3)]
