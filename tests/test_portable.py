"""`python -m phi4_recipes.portable` on folders saved the way transformers 5 saves them (what `trl sft` leaves):
Phi-3 and Llama configs, the training template with `{% generation %}` tags. tests/test_trl_compat.py runs it
on a real `trl sft` checkpoint; these are the seconds-long checks of each rewrite."""

import copy
import json
import subprocess
import sys

import jinja2
import pytest
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM

from phi4_recipes.model_loading import tiny_tokenizer
from phi4_recipes.portable import make_checkpoint_portable, plain_template
from phi4_recipes.tokenizer import load_chat_template, load_training_chat_template
from stage_runner import REPO, script_env

SMALL = {"vocab_size": 64, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
         "num_attention_heads": 2, "num_key_value_heads": 1}


def _save_like_transformers(folder, model, template: str) -> None:
    model.save_pretrained(folder)
    tokenizer = copy.deepcopy(tiny_tokenizer())  # the cached one is shared with every other test
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)


def test_a_phi3_save_gets_our_config_keys_tokenizer_class_and_plain_template(tmp_path):
    config = Phi3Config(**SMALL, rope_parameters={"rope_type": "default", "rope_theta": 250_000.0})
    _save_like_transformers(tmp_path, Phi3ForCausalLM(config), load_training_chat_template())
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "rope_theta" not in saved  # what transformers 5 writes
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "TokenizersBackend"

    proc = subprocess.run([sys.executable, "-m", "phi4_recipes.portable", str(tmp_path)], cwd=REPO, env=script_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["rope_theta"] == 250_000.0 and config["rope_scaling"] is None and config["sliding_window"] is None
    assert config["architectures"] == ["Phi3ForCausalLM"] and config["model_type"] == "phi3"
    tokenizer_config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tokenizer_config["chat_template"] == (tmp_path / "chat_template.jinja").read_text() == load_chat_template()
    messages = [{"role": "user", "content": "1 + 1?"}, {"role": "assistant", "content": "2"}]
    assert AutoTokenizer.from_pretrained(tmp_path).apply_chat_template(messages, tokenize=False) == \
        jinja2.Environment().from_string(load_chat_template()).render(messages=messages)


def test_another_architecture_keeps_its_template_without_generation_tags(tmp_path):
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{%- generation -%}{{ m['content'] }}"
                "{%- endgeneration -%}{% else %}{{ m['content'] }}{% endif %}{% endfor %}")
    config = LlamaConfig(**SMALL, rope_parameters={"rope_type": "default", "rope_theta": 500_000.0})
    _save_like_transformers(tmp_path, LlamaForCausalLM(config), template)
    make_checkpoint_portable(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["rope_theta"] == 500_000.0
    shipped = (tmp_path / "chat_template.jinja").read_text()
    assert "generation" not in shipped and shipped == plain_template(template)
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert jinja2.Environment().from_string(shipped).render(messages=messages) == "qa"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".jinja")}
    make_checkpoint_portable(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".jinja")} == before


def test_a_folder_that_is_not_a_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a saved checkpoint folder \(no config.json"):
        make_checkpoint_portable(tmp_path)
