import json

import pytest
import torch
from transformers import AutoModelForCausalLM, Phi3Config, Phi3ForCausalLM

from phi4_recipes.model import PRESETS, Phi4Config, Phi4ForCausalLM, count_parameters


def tiny_config(**overrides) -> Phi4Config:
    # Smaller than the tiny preset so each test runs in well under a second.
    fields = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=300, max_position_embeddings=128)
    return Phi4Config.from_preset("tiny", **{**fields, **overrides})


def test_14b_preset_has_phi4_parameter_count():
    with torch.device("meta"):
        model = Phi4ForCausalLM(Phi4Config.from_preset("phi4-14b"))
    assert 14.6e9 <= count_parameters(model) <= 14.8e9


def test_presets_follow_the_report():
    base = Phi4Config.from_preset("phi4-14b")
    long = Phi4Config.from_preset("phi4-14b-16k")
    assert (base.max_position_embeddings, base.rope_theta) == (4096, 10_000.0)
    assert (long.max_position_embeddings, long.rope_theta) == (16_384, 250_000.0)
    assert base.num_key_value_heads == 10 and base.hidden_size // base.num_attention_heads == 128
    assert base.sliding_window is None and not base.tie_word_embeddings
    with torch.device("meta"):
        colab = count_parameters(Phi4ForCausalLM(Phi4Config.from_preset("phi4-colab")))
    assert 150e6 <= colab <= 400e6 and PRESETS["phi4-colab"]["vocab_size"] == 100_352
    assert count_parameters(Phi4ForCausalLM(Phi4Config.from_preset("tiny"))) < 5e6


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match="phi4-14b.*tiny|tiny.*phi4-14b"):
        Phi4Config.from_preset("phi4-7b")


def test_sliding_window_is_refused():
    with pytest.raises(ValueError, match="sliding_window=64"):
        tiny_config(sliding_window=64)
    assert tiny_config(sliding_window=128).sliding_window == 128  # as long as the context: full attention


def _twin_phi3(model: Phi4ForCausalLM) -> Phi3ForCausalLM:
    config = Phi3Config(**{k: v for k, v in model.config.to_dict().items() if k in Phi3Config.__dataclass_fields__})
    twin = Phi3ForCausalLM(config).eval()
    missing, unexpected = twin.load_state_dict(model.state_dict(), strict=True)
    assert not missing and not unexpected
    return twin


def test_same_logits_and_loss_as_transformers_phi3():
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config()).eval()
    twin = _twin_phi3(model)
    ids = torch.randint(0, 300, (2, 24))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # left padding exercises the mask path too
    ours = model(ids, attention_mask=mask, labels=ids)
    theirs = twin(ids, attention_mask=mask, labels=ids)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=0)


def test_liger_switch_keeps_cpu_math_identical():
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config(use_liger=True)).eval()
    plain = Phi4ForCausalLM(tiny_config(use_liger=False)).eval()
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, 300, (1, 16))
    torch.testing.assert_close(model(ids).logits, plain(ids).logits, atol=0, rtol=0)


def test_saved_checkpoint_opens_with_plain_auto_class(tmp_path):
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "phi3" and saved["architectures"] == ["Phi3ForCausalLM"]
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is Phi3ForCausalLM
    ids = torch.randint(0, 300, (1, 12))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=1e-5, rtol=0)
    # And a Phi-3 folder (the form microsoft/phi-4 is published in) loads back into Phi4ForCausalLM.
    again = Phi4ForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(again(ids).logits, model(ids).logits, atol=1e-5, rtol=0)


def test_greedy_generation_with_and_without_kv_cache_agree():
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config()).eval()
    prompt = torch.randint(0, 300, (2, 7))
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=model.config.pad_token_id, eos_token_id=None)
    with_cache = model.generate(prompt, use_cache=True, **kwargs)
    without = model.generate(prompt, use_cache=False, **kwargs)
    assert with_cache.shape == (2, 19)
    assert torch.equal(with_cache, without)


def test_gradient_checkpointing_trains():
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config())
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.randint(0, 300, (4, 32))
    losses = []
    for _ in range(15):
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert model.model.gradient_checkpointing
    assert losses[-1] < 0.6 * losses[0]


def test_released_phi4_config_format_loads_unchanged(tmp_path):
    """microsoft/phi-4 ships a transformers-4.x config (rope_theta, rope_scaling, attention_bias, auto_map);
    a folder in that format, scaled down (token ids inside the small vocabulary), loads into Phi4ForCausalLM
    with the same logits."""
    torch.manual_seed(0)
    model = Phi4ForCausalLM(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    legacy = {
        "_name_or_path": "microsoft/phi-4", "architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
        "attention_bias": False, "attention_dropout": 0.0, "auto_map": {}, "bos_token_id": 0,
        "embd_pdrop": 0.0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 128,
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "original_max_position_embeddings": 128, "pad_token_id": 8, "resid_pdrop": 0.0,
        "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 250000, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.47.0",
        "use_cache": True, "vocab_size": 300,
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    loaded = Phi4ForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert loaded.config.rope_theta == 250000 and loaded.config.use_liger
    twin = Phi4ForCausalLM(tiny_config(rope_theta=250000)).eval()
    twin.load_state_dict(model.state_dict())
    ids = torch.randint(0, 300, (1, 12))
    torch.testing.assert_close(loaded(ids).logits, twin(ids).logits, atol=1e-5, rtol=0)


# The keys transformers 4.x's Phi3Config reads, with microsoft/phi-4's values for a 16K checkpoint.
TRANSFORMERS_4_KEYS = {"model_type": "phi3", "architectures": ["Phi3ForCausalLM"], "rope_theta": 250000.0,
                       "rope_scaling": None, "sliding_window": None, "partial_rotary_factor": 1.0,
                       "max_position_embeddings": 1024, "original_max_position_embeddings": 1024}


def test_midtrained_config_json_carries_the_transformers_4_keys(tmp_path):
    """A 4.x release reads the RoPE base from top-level rope_theta (without it: 10,000, silently)."""
    from trl import ModelConfig

    from phi4_recipes.model_loading import get_model, tiny_tokenizer

    Phi4ForCausalLM(Phi4Config.from_preset("tiny")).save_pretrained(tmp_path / "pretrain")
    midtrain = get_model(ModelConfig(model_name_or_path=str(tmp_path / "pretrain")), tiny_tokenizer(),
                         config_overrides={"rope_theta": 250000, "max_position_embeddings": 1024})
    midtrain.save_pretrained(tmp_path / "midtrain")
    saved = json.loads((tmp_path / "midtrain" / "config.json").read_text())
    assert {key: saved.get(key) for key in TRANSFORMERS_4_KEYS} == TRANSFORMERS_4_KEYS
    assert saved["rope_parameters"]["rope_theta"] == 250000.0  # what 5.x reads
    assert Phi4Config.from_pretrained(tmp_path / "midtrain").rope_theta == 250000.0


def test_saves_in_5gb_shards_by_default_and_a_sharded_checkpoint_reloads(tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    model = Phi4ForCausalLM(tiny_config()).eval()
    seen = []
    original = PreTrainedModel.save_pretrained
    monkeypatch.setattr(PreTrainedModel, "save_pretrained",
                        lambda self, *a, **kw: seen.append(kw["max_shard_size"]) or original(self, *a, **kw))
    model.save_pretrained(tmp_path / "default")
    assert seen == ["5GB"]  # microsoft/phi-4 ships 5 GB shards; transformers' own default is 50 GB
    model.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    shards = sorted((tmp_path / "sharded").glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    for loader in (Phi4ForCausalLM, AutoModelForCausalLM):
        loaded = loader.from_pretrained(tmp_path / "sharded", dtype=torch.float32).eval()
        ids = torch.randint(0, 300, (1, 8))
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=1e-5, rtol=0)


def test_lora_targets_are_checked_against_the_fused_projections(caplog):
    """Llama-style targets match only o_proj in the fused Phi-3/Phi-4 layout: warned; the fused names are not."""
    from types import SimpleNamespace

    from phi4_recipes.training import FUSED_LORA_TARGETS, check_lora_targets

    model = Phi4ForCausalLM(tiny_config())
    llama = SimpleNamespace(use_peft=True, lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    with caplog.at_level("WARNING"):
        assert check_lora_targets(model, llama) == {"q_proj": 0, "k_proj": 0, "v_proj": 0, "o_proj": 2}
    assert "['q_proj', 'k_proj', 'v_proj'] match no module" in caplog.text and "qkv_proj" in caplog.text
    caplog.clear()
    fused = SimpleNamespace(use_peft=True, lora_target_modules=FUSED_LORA_TARGETS)
    with caplog.at_level("WARNING"):
        assert set(check_lora_targets(model, fused).values()) == {2}
    assert "lora_target_modules" not in caplog.text
    assert check_lora_targets(model, SimpleNamespace(use_peft=True, lora_target_modules="all-linear")) == {}
