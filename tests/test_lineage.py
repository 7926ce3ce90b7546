"""What a checkpoint says about where it comes from, through the real SFT script: a PEFT adapter names its base by
an absolute path, the card carries the nearest Hub model up the chain and its license, the manifest lists the
local parents; and a non-Phi model is saved in 5 GB shards like Phi4ForCausalLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer, PreTrainedModel, Trainer, TrainingArguments

from phi4_recipes.model.modeling_phi4 import MAX_SHARD_SIZE
from phi4_recipes.model_loading import get_model
from stage_runner import REPO, script_env
from test_any_model import sft_rows, write_model

# A local folder standing in for a model downloaded from the Hub: its card says what it was fine-tuned from and
# under which license, as Llama and Qwen cards do.
ROOT_CARD = "---\nbase_model: org/name\nlicense: llama3.2\n---\n# a Llama fine-tune\n"


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory) -> Path:
    """`run_sft.py` with `use_peft`, started from its own folder with the base named by a relative path."""
    work = tmp_path_factory.mktemp("lineage")
    root = write_model(work, "llama")
    (root / "README.md").write_text(ROOT_CARD, encoding="utf-8")
    (work / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft_rows(8)), encoding="utf-8")
    recipe = {"model_name_or_path": root.name, "dataset_name": "sft.jsonl", "use_peft": True, "lora_r": 4,
              "lora_alpha": 8, "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "max_length": 64, "packing": False,
              "output_dir": "sft", "per_device_train_batch_size": 4, "max_steps": 2, "report_to": "none",
              "bf16": False, "save_strategy": "no", "seed": 42}
    (work / "sft.yaml").write_text(json.dumps(recipe), encoding="utf-8")  # JSON is YAML
    proc = subprocess.run([sys.executable, str(REPO / "src" / "phi4_recipes" / "run_sft.py"), "sft.yaml"], cwd=work,
                          env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return work


def test_adapter_opens_from_another_working_directory(adapter_run, tmp_path, monkeypatch):
    adapter = adapter_run / "sft"
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str((adapter_run / "llama-random").resolve())
    monkeypatch.chdir(tmp_path)
    model = AutoPeftModelForCausalLM.from_pretrained(adapter)
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    assert model.generate(**tokenizer("The answer is", return_tensors="pt"), max_new_tokens=2).shape[-1] > 0


def test_adapter_card_and_manifest_carry_the_lineage(adapter_run):
    card = ModelCard.load(adapter_run / "sft" / "README.md").data
    assert card.base_model == "org/name" and card.license == "llama3.2" and card.library_name == "peft"
    lineage = json.loads((adapter_run / "sft" / "manifest.json").read_text())["lineage"]
    assert lineage == {"base_model": "org/name", "local_parents": [str((adapter_run / "llama-random").resolve())],
                       "license": {"license": "llama3.2"}}


def test_non_phi_model_is_saved_in_5gb_shards_by_the_trainer(tmp_path, monkeypatch):
    folder = write_model(tmp_path, "qwen2")
    model = get_model(SimpleNamespace(model_name_or_path=str(folder), dtype=None, model_revision=None,
                                      attn_implementation=None), AutoTokenizer.from_pretrained(folder),
                      use_liger=False)
    # Record what reaches transformers' save (the real one still writes the files).
    seen, save = [], PreTrainedModel.save_pretrained

    def recording_save(self, save_directory, *args, **kwargs):
        seen.append(kwargs.get("max_shard_size"))
        return save(self, save_directory, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", recording_save)
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none",
                                                          use_cpu=True))
    trainer.save_model(str(tmp_path / "out"))
    assert seen == [MAX_SHARD_SIZE] == ["5GB"]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    # A caller's own size still wins.
    model.save_pretrained(tmp_path / "small", max_shard_size="100MB")
    assert seen[-1] == "100MB"
