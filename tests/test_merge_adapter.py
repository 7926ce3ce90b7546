"""`python -m phi4_recipes.merge_adapter`: a LoRA adapter merged into whole weights that compute what the adapter
on its base computes, in the portable form our stages save, carrying the adapter's manifest and a card that no
longer calls it an adapter; the adapter folder is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phi4_recipes.merge_adapter import merge_adapter

pytest_plugins = ["generation_fixtures"]  # tiny_checkpoint, lora_adapter


@pytest.fixture()
def adapter(lora_adapter) -> tuple[Path, object]:
    """An adapter as run_dpo.py leaves one: peft's files, the tokenizer, our manifest with TRL's log."""
    folder, peft_model = lora_adapter
    manifest = {"stage": "dpo_pts", "seed": 7, "pairs": {"kept": 3, "dropped_too_long": 0, "exact_ids": 3},
                "resolved_config": {"model_args": {"use_peft": True, "lora_r": 4}},
                "log_history": [{"step": 1, "rewards/margins": 0.01}]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder, peft_model


def test_the_command_merges_into_portable_weights_that_compute_what_the_adapter_does(adapter, tiny_checkpoint,
                                                                                      tmp_path):
    import torch
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM

    folder, peft_model = adapter
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "dpo_pts"
    proc = subprocess.run([sys.executable, "-m", "phi4_recipes.merge_adapter", str(folder), "--output_dir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "adapter_config.json").exists()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        expected = peft_model(ids).logits
        got = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()(ids).logits
    assert torch.allclose(got, expected, atol=1e-4) and not torch.allclose(got, base, atol=1e-3)
    config = json.loads((out / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]  # what transformers 4.x reads
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "dpo_pts" and manifest["log_history"] and manifest["pairs"]["kept"] == 3
    assert manifest["merged_adapter"] == {"adapter": str(folder.resolve()), "base_model_name_or_path": str(tiny_checkpoint)}
    assert ModelCard.load(out / "README.md").data.library_name == "transformers"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_folder_that_is_not_an_adapter_or_the_adapter_itself_is_refused_by_name(adapter, tiny_checkpoint, tmp_path):
    folder, _ = adapter
    proc = subprocess.run([sys.executable, "-m", "phi4_recipes.merge_adapter", str(tiny_checkpoint), "--output_dir",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and f"{tiny_checkpoint}: not a LoRA adapter folder" in proc.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="its own folder"):
        merge_adapter(folder, folder)
