import pytest

from phi4_recipes.tokenizer import build_phi4_tokenizer, train_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_phi4_tokenizer()


CONVERSATION = [
    {"role": "system", "content": "You are Phi."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "The answer is 6."},
]


def test_renders_exact_phi4_format(tokenizer):
    assert tokenizer.apply_chat_template(CONVERSATION, tokenize=False) == (
        "<|im_start|>system<|im_sep|>You are Phi.<|im_end|>"
        "<|im_start|>user<|im_sep|>What is 2+2?<|im_end|>"
        "<|im_start|>assistant<|im_sep|>4<|im_end|>"
        "<|im_start|>user<|im_sep|>And 3+3?<|im_end|>"
        "<|im_start|>assistant<|im_sep|>The answer is 6.<|im_end|>"
    )


def test_generation_prompt(tokenizer):
    rendered = tokenizer.apply_chat_template(CONVERSATION[1:2], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user<|im_sep|>What is 2+2?<|im_end|><|im_start|>assistant<|im_sep|>"
    ids = tokenizer.apply_chat_template(CONVERSATION[1:2], add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids[:2] == [100_264, tokenizer.encode("user", add_special_tokens=False)[0]]
    assert ids[-1] == 100_266


def test_unknown_role_is_an_error(tokenizer):
    with pytest.raises(Exception, match="unknown role 'tool'"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


@pytest.mark.parametrize("make_tokenizer", ["phi4", "tiny"])
def test_assistant_mask_covers_assistant_content_and_im_end_only(tokenizer, make_tokenizer):
    tok = tokenizer if make_tokenizer == "phi4" else train_tiny_tokenizer(
        [m["content"] for m in CONVERSATION] * 10, vocab_size=320
    )
    out = tok.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = [i for i, m in zip(ids, mask) if m]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    expected = (
        tok.encode("4", add_special_tokens=False) + [im_end]
        + tok.encode("The answer is 6.", add_special_tokens=False) + [im_end]
    )
    assert trained == expected
    # Nothing of the headers, the system or user turns, or <|im_sep|> is trained on.
    assert sum(mask) == len(expected)
