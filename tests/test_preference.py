import pytest
import torch
from datasets import Dataset
from trl import DPOConfig

from phi4_recipes.data.preference import prepare_preference_pairs
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.model_loading import configure_generation, tiny_tokenizer
from phi4_recipes.run_dpo import TokenExactDPOTrainer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def merging_split(tok) -> tuple[str, str]:
    """A word the tokenizer spells as one token whose two pieces are tokens too (digits are split one by one
    in the tiny tokenizer, so the merge comes from a word)."""
    vocab = tok.get_vocab()
    for word in sorted(vocab):
        head, tail = word[:-1], word[-1]
        if word.isalpha() and len(word) >= 3 and head in vocab and tail in vocab \
                and tok.encode(word, add_special_tokens=False) == [vocab[word]]:
            return head, tail
    raise AssertionError("the tiny tokenizer has no mergeable word")


def pts_pair(tok):
    """A PTS pair whose prefix ends in a word's head and whose chosen token is its last letter: as text, the
    two are one token, so re-tokenising the pair would change the pivot."""
    head, tail = merging_split(tok)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Spell the word."}], add_generation_prompt=True,
                                     return_dict=True)["input_ids"]
    prefix = tok.encode(f"It is {head}", add_special_tokens=False)
    chosen, rejected = tok.convert_tokens_to_ids([tail, "9"])
    return {"prompt_ids": prompt + prefix, "chosen_ids": [chosen], "rejected_ids": [rejected],
            "question_id": "q1", "position": len(prefix)}


def test_naive_retokenisation_would_change_the_pivot_token(tok):
    pair = pts_pair(tok)
    naive = tok.encode(tok.decode(pair["prompt_ids"] + pair["chosen_ids"]), add_special_tokens=False)
    assert naive != pair["prompt_ids"] + pair["chosen_ids"]  # head + last letter collapse into one token


def test_pts_pairs_keep_exact_ids_through_the_trainer(tok, tmp_path):
    pair = pts_pair(tok)
    prepared = prepare_preference_pairs(Dataset.from_list([pair] * 4), tok, max_length=64, name="pts")
    assert prepared.kept == 4 and prepared.exact_ids == 4 and prepared.dropped_too_long == 0
    assert prepared.dataset[0]["chosen_ids"] == pair["chosen_ids"]

    torch.manual_seed(0)
    model = Phi4ForCausalLM(Phi4Config.from_preset("tiny"))
    configure_generation(model, tok)
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_length=64, report_to="none",
                     bf16=False, precompute_ref_log_probs=False, logging_steps=1, max_steps=1)
    ref = Phi4ForCausalLM(Phi4Config.from_preset("tiny"))
    ref.load_state_dict(model.state_dict())
    trainer = TokenExactDPOTrainer(model=model, ref_model=ref, args=args, train_dataset=prepared.dataset,
                                   processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    n = len(pair["prompt_ids"])
    chosen_row, rejected_row = batch["input_ids"][0], batch["input_ids"][2]
    assert chosen_row[: n + 1].tolist() == pair["prompt_ids"] + pair["chosen_ids"]
    assert rejected_row[: n + 1].tolist() == pair["prompt_ids"] + pair["rejected_ids"]
    # Exactly one trained token per side: no EOS or <|im_end|> was appended.
    assert batch["completion_mask"][0].sum().item() == 1 and batch["completion_mask"][2].sum().item() == 1
    trainer.train()


def test_conversational_pairs_end_with_im_end_and_prompt_with_generation_header(tok):
    row = {"prompt": [{"role": "user", "content": "What is 2 + 3?"}],
           "chosen": [{"role": "assistant", "content": "2 + 3 = 5. The answer is 5."}],
           "rejected": [{"role": "assistant", "content": "2 + 3 = 6. The answer is 6."}]}
    out = prepare_preference_pairs(Dataset.from_list([row]), tok, max_length=None, name="conv").dataset[0]
    im_end, im_sep = tok.convert_tokens_to_ids(["<|im_end|>", "<|im_sep|>"])
    assert out["prompt_ids"][-1] == im_sep
    assert out["chosen_ids"][-1] == im_end and out["rejected_ids"][-1] == im_end
    assert tok.decode(out["chosen_ids"], skip_special_tokens=True) == "2 + 3 = 5. The answer is 5."


def test_plain_text_pairs_get_eos(tok):
    row = {"prompt": "Q: 2+2? A:", "chosen": " 4", "rejected": " 5"}
    out = prepare_preference_pairs(Dataset.from_list([row]), tok, max_length=None, name="plain").dataset[0]
    assert out["chosen_ids"][-1] == tok.eos_token_id


def test_pairs_over_max_length_are_dropped_and_counted(tok):
    short = pts_pair(tok)
    long = dict(short, prompt_ids=short["prompt_ids"] * 10)
    prepared = prepare_preference_pairs(Dataset.from_list([short, long, short]), tok, max_length=64, name="mix")
    assert (prepared.kept, prepared.dropped_too_long) == (2, 1)
    assert all(len(p) < 64 for p in prepared.dataset["prompt_ids"])


def test_missing_columns_name_the_dataset(tok):
    with pytest.raises(ValueError, match=r"dataset pairs\.jsonl: missing column\(s\) \['rejected'\]"):
        prepare_preference_pairs(Dataset.from_list([{"prompt": "a", "chosen": "b"}]), tok, 64, "pairs.jsonl")
