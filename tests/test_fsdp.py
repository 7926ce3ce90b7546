"""FSDP2 for real: recipes/accelerate_configs/fsdp.yaml under `accelerate launch`, 2 processes on the CPU (gloo),
tiny SFT through run_sft.py on our Phi-4 model and on a Qwen2, each against a single-process run of the same steps.

accelerate 1.16 builds FSDP only on accelerator devices: on the CPU it silently trains DDP instead (see
tests/fsdp_on_cpu/sitecustomize.py, which the 2-process runs load, and `require_requested_distribution`, which
stops a user's run in that case). The wrap policy, `fully_shard` over gloo and the full-state-dict save are
accelerate's and torch's own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
from accelerate.utils.launch import prepare_multi_gpu_env
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.training import require_requested_distribution
from stage_runner import REPO, logged_losses, run_stage, script_env
from test_any_model import sft_rows, write_model

pytest_plugins = ["generation_fixtures"]

FSDP_CONFIG = REPO / "recipes" / "accelerate_configs" / "fsdp.yaml"
CPU_FSDP_HOOK = Path(__file__).parent / "fsdp_on_cpu"
STEPS, GLOBAL_BATCH = 4, 8
# Adam moves a weight by at most about the learning rate per step, whatever its gradient: 2.5e-3 summed over the
# 4 cosine steps from 1e-3. The two runs add the same gradients in a different order (two half-batch sums
# reduce-scattered over gloo vs one full-batch sum), a float32 difference of ~1e-7 relative, and Adam's
# normalisation amplifies it on coordinates whose gradient is near its eps (measured: 1e-5 at most). 1e-4 is 4% of
# the largest possible move; a run that saw other batches or skipped a step differs by ~1e-3.
WEIGHT_ATOL = 1e-4
LOSS_RTOL = 1e-5  # same batches and token-weighted averaging across ranks: only summation order differs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_env() -> dict[str, str]:
    env = script_env()
    env["PYTHONPATH"] = os.pathsep.join([str(CPU_FSDP_HOOK), env["PYTHONPATH"]])
    env["OMP_NUM_THREADS"] = "1"  # two ranks on 2 cores
    return env


def _fsdp_plugin_from_config(monkeypatch) -> FullyShardedDataParallelPlugin:
    """The plugin a rank builds: fsdp.yaml through `accelerate launch`'s own parsing into the environment."""
    args = launch_command_parser().parse_args(["--config_file", str(FSDP_CONFIG), "--num_processes", "2", "x.py"])
    env = prepare_multi_gpu_env(_validate_launch_command(args)[0])
    for key, value in env.items():
        if key.startswith("FSDP_") or key == "ACCELERATE_USE_FSDP":
            monkeypatch.setenv(key, value)
    return FullyShardedDataParallelPlugin()


def test_fsdp_config_wraps_each_models_own_decoder_layer(monkeypatch):
    plugin = _fsdp_plugin_from_config(monkeypatch)
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap is None
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    for model, layer in [(Phi4ForCausalLM(Phi4Config.from_preset("tiny", num_key_value_heads=2, **tiny)),
                          "Phi4DecoderLayer"),
                         (LlamaForCausalLM(LlamaConfig(vocab_size=64, **tiny)), "LlamaDecoderLayer")]:
        policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
        assert [type(m).__name__ for m in model.modules() if policy(m)] == [layer, layer]


def test_fsdp_or_deepspeed_that_accelerate_did_not_set_up_fails():
    require_requested_distribution(DistributedType.FSDP, {"ACCELERATE_USE_FSDP": "true"})
    require_requested_distribution(DistributedType.MULTI_CPU, {})
    with pytest.raises(RuntimeError, match=r"asks for FSDP \(ACCELERATE_USE_FSDP=true\) but accelerate set up MULTI_CPU"):
        require_requested_distribution(DistributedType.MULTI_CPU, {"ACCELERATE_USE_FSDP": "true"})
    with pytest.raises(RuntimeError, match="asks for DEEPSPEED .* set up NO"):
        require_requested_distribution(DistributedType.NO, {"ACCELERATE_USE_DEEPSPEED": "true"})


def _qwen2_recipe(root: Path) -> Path:
    """test_any_model's tiny Qwen2 (tied embeddings, ChatML template without generation markers) and its SFT rows."""
    data = root / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sft_rows()))
    recipe = {"model_name_or_path": str(write_model(root, "qwen2")), "dataset_name": str(data),
              "assistant_only_loss": True, "packing": False, "max_length": 64, "learning_rate": 1.0e-3,
              "lr_scheduler_type": "cosine", "report_to": "none", "bf16": False, "seed": 42, "save_strategy": "no"}
    path = root / "sft.yaml"
    path.write_text(json.dumps(recipe))  # JSON is YAML
    return path


@pytest.fixture(params=["phi4", "qwen2"])
def sft_case(request, tmp_path, tiny_checkpoint):
    """(recipe and its model overrides, initial weights folder, the decoder layer class FSDP must wrap)."""
    if request.param == "phi4":  # the tiny SFT recipe as `make tiny` runs it, from a tiny Phi-4 checkpoint
        return ["recipes/tiny/sft.yaml", "--model_name_or_path", str(tiny_checkpoint)], tiny_checkpoint, \
            "Phi4DecoderLayer"
    recipe = _qwen2_recipe(tmp_path)
    return [str(recipe)], tmp_path / "qwen2-random", "Qwen2DecoderLayer"


@pytest.mark.slow
def test_two_process_fsdp2_on_cpu_matches_one_process(sft_case, tmp_path):
    recipe_args, initial, layer = sft_case
    steps = ["--max_steps", str(STEPS), "--warmup_steps", "0", "--logging_steps", "1", "--dataset_max_rows", "64"]
    run_stage("run_sft.py", *recipe_args, *steps, "--per_device_train_batch_size", str(GLOBAL_BATCH),
              "--output_dir", tmp_path / "single", timeout=300)
    # As a user launches it, plus what the CPU needs: no bf16, the Trainer on the CPU (gloo), a free port.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(FSDP_CONFIG),
           "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
           str(REPO / "src/phi4_recipes/run_sft.py"), *recipe_args, *steps,
           "--per_device_train_batch_size", str(GLOBAL_BATCH // 2), "--use_cpu", "true",
           "--output_dir", str(tmp_path / "fsdp")]
    proc = subprocess.run(cmd, cwd=REPO, env=_launch_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]

    manifest = json.loads((tmp_path / "fsdp" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["distributed_type"] == "FSDP"
    assert layer in manifest["fsdp_units"]
    assert not {"Phi4DecoderLayer", "Phi3DecoderLayer", "Qwen2DecoderLayer"} - {layer} & set(manifest["fsdp_units"])

    single, sharded = (dict(logged_losses(tmp_path / name)) for name in ("single", "fsdp"))
    assert sorted(sharded) == list(range(1, STEPS + 1))
    assert sharded == pytest.approx(single, rel=LOSS_RTOL)

    weights = {name: AutoModelForCausalLM.from_pretrained(folder).state_dict()  # plain transformers, no remote code
               for name, folder in [("initial", initial), ("single", tmp_path / "single"), ("fsdp", tmp_path / "fsdp")]}
    assert weights["fsdp"].keys() == weights["single"].keys()
    for key, value in weights["fsdp"].items():
        torch.testing.assert_close(value, weights["single"][key], rtol=0, atol=WEIGHT_ATOL, msg=key)
    moved = max((weights["single"][k] - weights["initial"][k]).abs().max().item() for k in weights["single"])
    assert moved > 10 * WEIGHT_ATOL  # the runs trained, so agreeing within the tolerance means something
