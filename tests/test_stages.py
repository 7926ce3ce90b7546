"""The tiny stages through their real scripts: pretrain -> midtrain -> SFT -> DPO, resume, errors, 2 processes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stage_runner import REPO, logged_losses, run_stage, script_env

pytestmark = pytest.mark.slow

# The pipeline trains SFT on run_synth's plurality output; these tests use the built-in file it is made from.
SFT_RECIPE = ("recipes/tiny/sft.yaml", "--dataset_name", "data/tiny/arithmetic_train.jsonl")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Shortened tiny recipes, each stage starting from the previous stage's output folder."""
    root = tmp_path_factory.mktemp("chain")
    # The pipeline feeds run_synth output into the mixture and SFT; here the built-in files stand in for it,
    # so the chain tests the training stages alone.
    mixture = root / "mixture.yaml"
    mixture.write_text((REPO / "recipes/tiny/mixture.yaml").read_text().replace(
        "outputs/tiny/synth/rewrite/data.jsonl", "data/tiny/pretrain_synthetic.jsonl"))
    run_stage("run_pretrain.py", "recipes/tiny/pretrain.yaml", "--output_dir", root / "pretrain",
              "--dataset_mixture", mixture, "--max_steps", "30", "--warmup_steps", "2", "--logging_steps", "3")
    run_stage("run_pretrain.py", "recipes/tiny/midtrain.yaml", "--model_name_or_path", root / "pretrain",
              "--dataset_mixture", mixture, "--output_dir", root / "midtrain", "--max_steps", "15", "--max_length", "512", "--logging_steps", "1")
    run_stage("run_sft.py", *SFT_RECIPE, "--model_name_or_path", root / "midtrain", "--output_dir", root / "sft", "--max_steps", "40", "--logging_steps", "4")
    run_stage("run_dpo.py", "recipes/tiny/dpo_judge.yaml", "--dataset_name", "data/tiny/dpo_pairs.jsonl",
              "--model_name_or_path", root / "sft",
              "--output_dir", root / "dpo", "--max_steps", "8", "--learning_rate", "5e-4", "--logging_steps", "1",
              "--dataset_max_rows", "16")  # 16 pairs, batch 8: each pair seen 4 times
    return root


def _first_last(output_dir):
    """First logged loss and the mean of the last three (single steps are noisy at this size)."""
    losses = [loss for _, loss in logged_losses(output_dir)]
    return losses[0], sum(losses[-3:]) / 3


@pytest.mark.parametrize("stage, factor", [("pretrain", 0.8), ("midtrain", 0.97), ("sft", 0.8), ("dpo", 0.95)])
def test_loss_goes_down(chain, stage, factor):
    first, last = _first_last(chain / stage)
    assert last < factor * first, (stage, first, last)


def test_midtrain_raises_rope_base_and_context(chain):
    config = json.loads((chain / "midtrain" / "config.json").read_text())
    assert config["rope_parameters"]["rope_theta"] == 250000
    assert config["max_position_embeddings"] == 1024
    manifest = json.loads((chain / "midtrain" / "manifest.json").read_text())
    plan = {s["name"]: s for s in manifest["mixture_plan"]}
    assert plan["long"]["weight"] == 0.3 and plan["recall"]["weight"] == 0.7


def test_every_stage_writes_manifest_card_and_plain_phi3_checkpoint(chain):
    for stage in ("pretrain", "midtrain", "sft", "dpo"):
        manifest = json.loads((chain / stage / "manifest.json").read_text())
        assert manifest["seed"] == 42 and manifest["versions"]["trl"].startswith("1.16")
        assert manifest["recipe"] and manifest["inputs"] and all("datasets_fingerprint" in i for i in manifest["inputs"])
        assert "## Recipe" in (chain / stage / "README.md").read_text()
        config = json.loads((chain / stage / "config.json").read_text())
        assert config["architectures"] == ["Phi3ForCausalLM"] and config["eos_token_id"] == 5
        assert AutoTokenizer.from_pretrained(chain / stage).eos_token == "<|im_end|>"
    manifest = json.loads((chain / "dpo" / "manifest.json").read_text())
    assert manifest["pairs"] == {"kept": 16, "dropped_too_long": 0, "exact_ids": 0}


def test_leaderboard_says_how_much_the_dpo_round_trained(chain):
    """A DPO row's difference is read with its size: the note comes from the real run_dpo manifest."""
    from phi4_recipes.evaluation.leaderboard import Row, preference_training

    manifest = json.loads((chain / "dpo" / "manifest.json").read_text())
    margins = [e["rewards/margins"] for e in manifest["log_history"] if "rewards/margins" in e]
    note = preference_training(Row("dpo", {}, run={"checkpoint": str(chain / "dpo")}))
    assert note.startswith("trained 8 optimizer steps on 16 preference pairs; reward margin ")
    assert f"{margins[-1]:+.4f}" in note  # 8 logged steps: the last tenth is the last step
    assert preference_training(Row("sft", {}, run={"checkpoint": str(chain / "sft")})) is None  # no pairs: not DPO
    assert preference_training(Row("gone", {}, run={"checkpoint": str(chain / "nowhere")})) is None


def test_sft_model_stops_at_im_end(chain):
    tok = AutoTokenizer.from_pretrained(chain / "sft")
    model = AutoModelForCausalLM.from_pretrained(chain / "sft").eval()
    rows = [json.loads(line) for line in (REPO / "data/tiny/arithmetic_test.jsonl").read_text().splitlines()[:4]]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in model.generation_config.eos_token_id
    for row in rows:
        prompt = tok.apply_chat_template(row["messages"][:1], add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)
        out = model.generate(**prompt, max_new_tokens=80, do_sample=False)
        new = out[0, prompt["input_ids"].shape[1]:].tolist()
        assert new[-1] == im_end and len(new) < 80, tok.decode(new)


def test_kill_and_resume_continues_with_same_data_order(chain, tmp_path):
    args = [*SFT_RECIPE, "--model_name_or_path", str(chain / "pretrain"), "--max_steps", "12",
            "--save_strategy", "steps", "--save_steps", "3", "--logging_steps", "1", "--dataset_max_rows", "192"]
    run_stage("run_sft.py", *args, "--output_dir", tmp_path / "reference")
    reference = dict(logged_losses(tmp_path / "reference"))

    killed_dir = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "src/phi4_recipes/run_sft.py"), *args, "--output_dir", str(killed_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (killed_dir / "checkpoint-3" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "checkpoint-12").exists() and not (killed_dir / "manifest.json").exists()

    run_stage("run_sft.py", *args, "--output_dir", killed_dir, "--resume_from_checkpoint", "true")
    resumed = dict(logged_losses(killed_dir))
    assert max(resumed) == 12
    for step in range(10, 13):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-6), step


def test_two_process_cpu_run_trains_and_saves(chain, tmp_path):
    # accelerate 1.15 runs `--cpu --num_processes 2` as ONE process unless an MPI hostfile is given; its
    # torchrun launcher (`--multi_gpu`) with the Trainer on the CPU (`use_cpu`) gives two gloo ranks.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(REPO / "src/phi4_recipes/run_sft.py"), *SFT_RECIPE, "--model_name_or_path",
           str(chain / "pretrain"), "--output_dir", str(tmp_path), "--max_steps", "3", "--logging_steps", "1",
           "--per_device_train_batch_size", "4", "--use_cpu", "true"]
    proc = subprocess.run(cmd, cwd=REPO, env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.isfinite(loaded.lm_head.weight).all()


def test_unknown_key_fails_before_any_work(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text((REPO / "recipes/tiny/sft.yaml").read_text().replace("assistant_only_loss", "asistant_only_loss")
                      .replace("outputs/tiny/sft", str(tmp_path / "out")))
    proc = run_stage("run_sft.py", recipe, check=False)
    assert proc.returncode != 0
    assert f"{recipe}: unknown key 'asistant_only_loss' (did you mean 'assistant_only_loss'?)" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_column_names_column_and_dataset(tmp_path):
    data = tmp_path / "conversations.jsonl"
    data.write_text('{"conversation": [{"role": "user", "content": "hi"}]}\n')
    proc = run_stage("run_sft.py", "recipes/tiny/sft.yaml", "--dataset_name", data, "--output_dir",
                     tmp_path / "out", "--model_name_or_path", "tiny", check=False)
    assert proc.returncode != 0
    assert f"dataset {data}: missing column(s) ['messages']" in proc.stderr


def test_stage_before_its_upstream_stage_names_the_missing_folder(tmp_path):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text((REPO / "recipes/tiny/sft.yaml").read_text().replace("outputs/tiny/midtrain",
                                                                             str(tmp_path / "outputs/tiny/midtrain")))
    proc = run_stage("run_sft.py", recipe, check=False)
    assert proc.returncode != 0
    assert f"key 'model_name_or_path': {tmp_path}/outputs/tiny/midtrain does not exist" in proc.stderr
    assert "Repo id must be" not in proc.stderr


def test_push_without_token_keeps_local_checkpoint(chain, tmp_path):
    env_home = tmp_path / "hf_home"
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "src/phi4_recipes/run_sft.py"), *SFT_RECIPE, "--model_name_or_path",
           str(chain / "pretrain"), "--output_dir", str(out), "--max_steps", "1", "--push_to_hub", "true",
           "--hub_model_id", "someone/phi4-tiny-sft"]
    env = {**script_env(), "HF_HUB_OFFLINE": "0", "HF_HOME": str(env_home)}
    env.pop("HF_TOKEN", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "no Hugging Face token" in proc.stderr and f"the local checkpoint is kept at {out}" in proc.stderr
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
