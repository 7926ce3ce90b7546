"""Why run_dpo keeps TokenExactDPOTrainer: TRL 1.16's DPOTrainer has no path for pre-tokenised pairs.

Its `_prepare_dataset` always runs for text datasets (extract_prompt, then EOS appended to plain-text
completions, then tokenisation), so an id-only PTS dataset fails with KeyError 'chosen'; with text columns
it re-tokenises and appends an end token. The override skips that step and TRL's own collator then trains on
exactly prompt_ids + chosen_ids. These tests pin both sides, so a TRL release that adds a pre-tokenised path
shows up here (drop the override then).
"""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from phi4_recipes.pts.runner.export import text_pair_rows
from phi4_recipes.run_dpo import TokenExactDPOTrainer

PAIRS = {"prompt_ids": [[5, 6, 7], [5, 8]], "chosen_ids": [[9], [10]], "rejected_ids": [[11], [12]]}


@pytest.fixture(scope="module")
def tiny():
    vocab = {f"t{i}": i for i in range(30)} | {"<eos>": 30, "<pad>": 31}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, eos_token_id=30,
                                         pad_token_id=31))
    return model, tokenizer


def _args(tmp_path):
    return DPOConfig(output_dir=str(tmp_path), report_to="none", per_device_train_batch_size=2, max_steps=1,
                     use_cpu=True, bf16=False)


def test_stock_dpo_trainer_rejects_pre_tokenised_pairs(tiny, tmp_path):
    model, tokenizer = tiny
    with pytest.raises(KeyError, match="chosen"):
        DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_args(tmp_path),
                   train_dataset=Dataset.from_dict(PAIRS), processing_class=tokenizer)


def test_stock_dpo_trainer_appends_eos_to_text_pairs(tiny, tmp_path):
    model, tokenizer = tiny
    text = Dataset.from_dict({"prompt": ["t5 t6 t7"], "chosen": [" t9"], "rejected": [" t11"]})
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_args(tmp_path), train_dataset=text,
                         processing_class=tokenizer)
    row = trainer.train_dataset[0]
    assert row["chosen_ids"] == [9, 30] and row["rejected_ids"] == [11, 30], "a token the search never saw"


def test_token_exact_trainer_feeds_trls_collator_the_exact_ids(tiny, tmp_path):
    model, tokenizer = tiny
    trainer = TokenExactDPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_args(tmp_path),
                                   train_dataset=Dataset.from_dict(PAIRS),
                                   processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(2)]
    assert [r["chosen_ids"] for r in rows] == PAIRS["chosen_ids"]
    batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(rows)
    # first half chosen, second half rejected; only the one searched token is a completion token
    assert batch["input_ids"][0].tolist()[:4] == [5, 6, 7, 9] and batch["input_ids"][2].tolist()[:4] == [5, 6, 7, 11]
    assert batch["completion_mask"].sum(dim=1).tolist() == [1, 1, 1, 1]
    assert 30 not in batch["input_ids"].tolist()[0]


def test_text_view_flags_pairs_that_do_not_retokenise_exactly(tiny):
    _, tokenizer = tiny
    rows = [{"prompt_ids": [5, 6], "chosen_ids": [9], "rejected_ids": [11], "prompt_text": "t5 t6",
             "chosen_text": " t9", "rejected_text": " t11", "question_id": "q", "response_index": 0, "position": 2,
             "p_chosen": 0.9, "p_rejected": 0.1},
            {"prompt_ids": [5, 6], "chosen_ids": [9], "rejected_ids": [11], "prompt_text": "t5 t6",
             "chosen_text": "t9", "rejected_text": " t11", "question_id": "q", "response_index": 0, "position": 3,
             "p_chosen": 0.9, "p_rejected": 0.1}]
    view = text_pair_rows(rows, tokenizer)
    assert [v["exact_retokenisation"] for v in view] == [True, False]
    assert view[0]["prompt"] == "t5 t6" and view[0]["chosen"] == " t9"
