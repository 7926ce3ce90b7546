"""Post-training any causal LM: a tiny random Llama (Llama-3 template with {% generation %} markers) and a tiny
random Qwen2 (ChatML template without markers, so template-diff masks) go through SFT, PTS, DPO and eval
with the real scripts, keeping their own architecture, tokenizer and chat template."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from phi4_recipes.data.assistant_masks import assistant_mask_by_template_diff
from phi4_recipes.model_loading import get_tokenizer, liger_choice
from phi4_recipes.tokenizer import end_of_turn_token
from stage_runner import run_stage

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|eot_id|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|eot_id|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

FAMILIES = {
    "llama": dict(specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>", "<|pad|>"], bos="<|begin_of_text|>", eos="<|end_of_text|>", pad="<|pad|>",
                  template=LLAMA3_TEMPLATE, end_of_turn="<|eot_id|>", config=LlamaConfig, model=LlamaForCausalLM),
    "qwen2": dict(specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=None, eos="<|endoftext|>",
                  pad="<|endoftext|>", template=CHATML_TEMPLATE, end_of_turn="<|im_end|>", config=Qwen2Config,
                  model=Qwen2ForCausalLM),
}
QUESTION = "Flip a coin: is it 1 or 2?"


def sft_rows(n: int = 64) -> list[dict]:
    """One question, answered 1 or 2 in turn: the SFT model says either with p ~ 0.5, so the digit is pivotal."""
    return [{"messages": [{"role": "user", "content": QUESTION},
                          {"role": "assistant", "content": f"The answer is {1 + i % 2}."}]} for i in range(n)]


def build_tokenizer(family: dict) -> PreTrainedTokenizerFast:
    corpus = [QUESTION, "The answer is 1.", "The answer is 2.", "user assistant system"] * 20
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=[AddedToken(t, special=True, normalized=False) for t in family["specials"]],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=family["bos"], eos_token=family["eos"],
                                   pad_token=family["pad"], chat_template=family["template"])


def write_model(root: Path, name: str) -> Path:
    family = FAMILIES[name]
    tokenizer = build_tokenizer(family)
    config = family["config"](vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                              tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    folder = root / f"{name}-random"
    family["model"](config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_recipes(root: Path, model: Path) -> dict[str, Path]:
    data = root / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sft_rows()))
    questions = root / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"coin-{i}", "question": QUESTION, "answer": "1"}) + "\n"
                                 for i in range(2)))
    common = {"report_to": "none", "bf16": False, "seed": 42, "save_strategy": "no", "logging_steps": 5}
    recipes = {
        "sft": {"model_name_or_path": str(model), "dataset_name": str(data), "assistant_only_loss": True,
                "packing": False, "max_length": 64, "output_dir": str(root / "sft"), "per_device_train_batch_size": 16,
                "learning_rate": 1.0e-2, "lr_scheduler_type": "constant", "max_steps": 40, **common},
        "pts": {"model_name_or_path": str(root / "sft"), "backend": "transformers", "dataset_name": str(questions),
                "id_field": "id", "question_field": "question", "answer_field": "answer", "oracle": "math",
                "responses_per_question": 4, "max_new_tokens": 12, "p_gap": 0.2, "p_min": 0.1, "p_max": 0.9,
                "min_trials": 16, "max_trials": 32, "confirm": True, "confirm_max_trials": 64, "pair_trials": 16,
                "output_dir": str(root / "pts"), "plot_max": 0, "seed": 42},
        "dpo": {"model_name_or_path": str(root / "sft"),
                "datasets": [{"path": "json", "data_files": str(root / "pts" / "pairs.jsonl")}],
                "beta": 0.1, "max_length": 64, "output_dir": str(root / "dpo"), "per_device_train_batch_size": 4,
                "learning_rate": 1.0e-3, "max_steps": 3, **common},
    }
    paths = {}
    for stage, recipe in recipes.items():
        paths[stage] = root / f"{stage}.yaml"
        paths[stage].write_text(json.dumps(recipe))  # JSON is YAML
    return paths


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def chain(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    recipes = write_recipes(root, write_model(root, request.param))
    run_stage("run_sft.py", recipes["sft"], timeout=300)
    run_stage("run_pts.py", recipes["pts"], timeout=300)
    run_stage("run_dpo.py", recipes["dpo"], timeout=300)
    run_stage("run_eval.py", "recipes/tiny/eval.yaml", "--model_name_or_path", root / "dpo",
              "--benchmarks", "tiny_choice", "--limit", "4", "--max_gen_toks", "8", "--output_dir", root / "eval",
              timeout=300)
    return request.param, root


def test_each_stage_keeps_the_architecture_tokenizer_and_template(chain):
    name, root = chain
    family = FAMILIES[name]
    for stage in ("sft", "dpo"):
        config = json.loads((root / stage / "config.json").read_text())
        assert config["model_type"] == name and config["architectures"] == [family["model"].__name__]
        with safe_open(str(root / stage / "model.safetensors"), framework="pt") as weights:
            keys = set(weights.keys())
        assert any(k.endswith("self_attn.q_proj.weight") for k in keys), "the model's own layout, not fused qkv"
        tokenizer = AutoTokenizer.from_pretrained(root / stage)
        assert tokenizer.chat_template == family["template"]
        eot = tokenizer.convert_tokens_to_ids(family["end_of_turn"])
        generation = json.loads((root / stage / "generation_config.json").read_text())
        assert generation["eos_token_id"][0] == eot, "generation stops at the template's own end of turn"


def test_sft_trains_the_answer_and_pts_finds_the_coin_token(chain):
    name, root = chain
    summary = json.loads((root / "pts" / "manifest.json").read_text())["summary"]
    assert summary["searched"] >= 1 and summary["pivots"] >= 1, summary
    pairs = [json.loads(line) for line in (root / "pts" / "pairs.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(root / "sft")
    eot = tokenizer.convert_tokens_to_ids(FAMILIES[name]["end_of_turn"])
    assert pairs and all(eot not in p["chosen_ids"] + p["rejected_ids"] for p in pairs)
    assert {p["chosen"].strip() for p in pairs} == {"1"}, [(p["chosen"], p["rejected"]) for p in pairs]


def test_dpo_and_eval_run_on_the_pts_pairs(chain):
    _, root = chain
    manifest = json.loads((root / "dpo" / "manifest.json").read_text())
    assert manifest["pairs"]["kept"] >= 1 and manifest["pairs"]["exact_ids"] >= 1
    results = list((root / "eval").glob("*.json"))
    assert results and "tiny_choice" in results[0].read_text()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_end_of_turn_is_the_templates_own(name):
    tokenizer = build_tokenizer(FAMILIES[name])
    assert end_of_turn_token(tokenizer) == FAMILIES[name]["end_of_turn"] != tokenizer.eos_token


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_judge_responders_stop_at_the_templates_end_of_turn(name):
    from phi4_recipes.judge.responders import _stop_ids

    tokenizer = build_tokenizer(FAMILIES[name])
    expected = {tokenizer.convert_tokens_to_ids(FAMILIES[name]["end_of_turn"]), tokenizer.eos_token_id}
    assert set(_stop_ids(tokenizer)) - expected <= {tokenizer.get_vocab().get("<|endoftext|>")}
    assert expected <= set(_stop_ids(tokenizer))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_one_stop_rule_for_the_checkpoint_pts_and_the_judge(name):
    """tokenizer.stop_token_ids owns the rule: a saved checkpoint's generation config, PTS and the judge's
    responders stop at the same ids, the template's end of turn first (the checkpoint's eos)."""
    from phi4_recipes.judge.responders import _stop_ids
    from phi4_recipes.model_loading import configure_generation
    from phi4_recipes.tokenizer import stop_token_ids

    tokenizer = build_tokenizer(FAMILIES[name])
    ids = stop_token_ids(tokenizer)
    assert ids[0] == tokenizer.convert_tokens_to_ids(FAMILIES[name]["end_of_turn"]) and len(set(ids)) == len(ids)
    model = SimpleNamespace(generation_config=SimpleNamespace(), config=SimpleNamespace())
    configure_generation(model, tokenizer)
    assert model.generation_config.eos_token_id == ids and model.config.eos_token_id == ids[0]
    assert list(_stop_ids(tokenizer)) == ids


def test_template_diff_mask_covers_assistant_content_and_end_of_turn():
    tokenizer = build_tokenizer(FAMILIES["qwen2"])
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "The answer is 1."},
                {"role": "user", "content": "again"}, {"role": "assistant", "content": "The answer is 2."}]
    ids, mask = assistant_mask_by_template_diff(tokenizer, messages, tokenizer.convert_tokens_to_ids("<|im_end|>"))
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert trained == "The answer is 1.<|im_end|>The answer is 2.<|im_end|>"
    # the same tokens the generation markers select in the Llama template
    llama = build_tokenizer(FAMILIES["llama"])
    marked = llama.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = assistant_mask_by_template_diff(llama, messages, llama.convert_tokens_to_ids("<|eot_id|>"))
    assert mask == list(marked["assistant_masks"]) and ids == list(marked["input_ids"])


def test_chat_template_phi4_adds_the_chatml_tokens(tmp_path):
    folder = write_model(tmp_path, "llama")
    own = get_tokenizer(None, str(folder))
    assert own.chat_template == LLAMA3_TEMPLATE
    phi4 = get_tokenizer(None, str(folder), chat_template="phi4")
    assert end_of_turn_token(phi4) == "<|im_end|>" and len(phi4) == len(own) + 3
    with pytest.raises(ValueError, match="chat_template 'llama3'"):
        get_tokenizer(None, str(folder), chat_template="llama3")


def test_liger_only_on_cuda_for_supported_types():
    supported = frozenset({"llama", "qwen2"})
    assert liger_choice("llama", use_liger=True, cuda=True, supported=supported)[0]
    assert not liger_choice("llama", use_liger=True, cuda=False, supported=supported)[0]
    assert not liger_choice("llama", use_liger=False, cuda=True, supported=supported)[0]
    use, reason = liger_choice("gpt_neox", use_liger=True, cuda=True, supported=supported)
    assert not use and "gpt_neox" in reason
    assert "not installed" in liger_choice("llama", use_liger=True, cuda=True, supported=frozenset())[1]


def test_pretraining_refuses_a_non_phi_model(tmp_path):
    folder = write_model(tmp_path, "llama")
    proc = run_stage("run_pretrain.py", "recipes/tiny/pretrain.yaml", "--model_name_or_path", folder,
                     "--output_dir", tmp_path / "out", check=False, timeout=300)
    assert proc.returncode != 0 and "is a llama model: pretraining and midtraining are Phi-4 specific" in proc.stderr
