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

from phi4_recipes.data.preference import prepare_preference_pairs
from phi4_recipes.pts.runner.export import retokenises_exactly
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


def test_retokenisation_flag_marks_text_that_encodes_to_other_ids(tiny):
    _, tokenizer = tiny
    assert retokenises_exactly(tokenizer, "t5 t6", " t9", [5, 6, 9])
    assert not retokenises_exactly(tokenizer, "t5 t6", "t9", [5, 6, 9]), "'t6t9' is one unknown word"


def test_one_pairs_file_feeds_both_trainers(tiny, tmp_path):
    """A PTS export row holds the ids (ours, used exactly) and their text (TRL's columns): the stock trainer
    reads the same rows without a KeyError, re-tokenising the text; ours keeps the searched ids."""
    model, tokenizer = tiny
    rows = Dataset.from_dict({**PAIRS, "prompt": ["t5 t6 t7", "t5 t8"], "chosen": [" t9", " t10"],
                              "rejected": [" t11", " t12"], "exact_retokenisation": [True, True]})
    stock = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_args(tmp_path), train_dataset=rows,
                       processing_class=tokenizer)
    assert stock.train_dataset[0]["chosen_ids"] == [9, 30]
    prepared = prepare_preference_pairs(rows, tokenizer, max_length=None, name="pairs.jsonl")
    assert prepared.exact_ids == 2 and prepared.dataset["chosen_ids"] == PAIRS["chosen_ids"]
    exact = TokenExactDPOTrainer(model=model, ref_model=copy.deepcopy(model), args=_args(tmp_path),
                                 train_dataset=prepared.dataset, processing_class=tokenizer)
    assert exact.train_dataset[0]["chosen_ids"] == [9]
