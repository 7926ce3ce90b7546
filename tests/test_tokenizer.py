import pytest
import tiktoken

from phi4_recipes.tokenizer import (
    CL100K_PATTERN_TIKTOKEN,
    PHI4_SPECIAL_TOKENS,
    TINY_SPECIAL_TOKENS,
    build_phi4_tokenizer,
    cl100k_path,
    load_cl100k_ranks,
    train_tiny_tokenizer,
)

# Digits and whitespace runs are where the HF regex engine and tiktoken's possessive pattern can disagree.
CORPUS = [
    "Hello world! It's 2024 and we're here; I'LL say DON'T, you've.",
    "1 12 123 1234 12345 1234567890 3.14159 99.99% 3,000,000 -42 1e-10",
    "a  b   c    d\n\n\ne \n \n  x  ", "   leading", "trailing   ", "\t\ttabs\t and\u00a0nbsp", "x\r\ny\r\n\r\nz",
    "  \n", "\n", " ", "\n\n", "end with newline\n", "",
    "日本語のテキスト、中文文本，한국어 텍스트。", "हिन्दी पाठ और संख्याएँ १२३", "النص العربي ١٢٣", "Ελληνικά Русский текст",
    "emoji 🎉🚀 👍🏽 👨‍👩‍👧", "def f(x):\n    return x**2  # square\n\n\nclass A:\n\tpass\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }", "<div class=\"x\">&amp;</div>",
    r"$\frac{a}{b} = \sum_{i=1}^{n} x_i^2$ and \(\int_0^1 f(x)\,dx\) \begin{align} y &= mx + b \end{align}",
    "url https://example.com/a?b=1&c=2 mail a.b@c.de", "''' \"\"\" `code` ~~~ ***", "ÄÖÜ äöü ß ñ ç œ",
]


@pytest.fixture(scope="module")
def phi4_tokenizer():
    return build_phi4_tokenizer()


@pytest.fixture(scope="module")
def reference_encoding():
    # tiktoken itself, built from the same verified file, is the reference.
    return tiktoken.Encoding(
        "cl100k_reference", pat_str=CL100K_PATTERN_TIKTOKEN, mergeable_ranks=load_cl100k_ranks(), special_tokens={}
    )


@pytest.mark.parametrize("text", CORPUS)
def test_ids_match_tiktoken(phi4_tokenizer, reference_encoding, text):
    assert phi4_tokenizer.encode(text, add_special_tokens=False) == reference_encoding.encode_ordinary(text)


def test_roundtrip_and_concatenated_corpus(phi4_tokenizer, reference_encoding):
    text = "\n".join(CORPUS) * 3
    ids = phi4_tokenizer.encode(text, add_special_tokens=False)
    assert ids == reference_encoding.encode_ordinary(text)
    assert phi4_tokenizer.decode(ids) == text


def test_special_tokens_at_documented_ids(phi4_tokenizer):
    assert len(phi4_tokenizer) == 100_352
    for content, token_id in PHI4_SPECIAL_TOKENS.items():
        assert phi4_tokenizer.convert_tokens_to_ids(content) == token_id
        assert phi4_tokenizer.encode(content, add_special_tokens=False) == [token_id]
    assert phi4_tokenizer.eos_token_id == 100_265 and phi4_tokenizer.bos_token_id == 100_257
    assert phi4_tokenizer.pad_token_id == 100_349 != phi4_tokenizer.eos_token_id
    assert phi4_tokenizer.convert_ids_to_tokens([100_256, 100_351]) == ["<|dummy_0|>", "<|dummy_87|>"]


def test_save_pretrained_round_trips(phi4_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    phi4_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = CORPUS[0] + "<|im_start|>user<|im_sep|>"
    assert loaded.encode(text, add_special_tokens=False) == phi4_tokenizer.encode(text, add_special_tokens=False)
    assert loaded.chat_template == phi4_tokenizer.chat_template
    assert (loaded.pad_token, loaded.eos_token) == ("<|dummy_85|>", "<|im_end|>")


def test_tampered_rank_file_is_refused(tmp_path):
    copy = tmp_path / "cl100k_base.tiktoken"
    data = bytearray(cl100k_path().read_bytes())
    data[100] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_cl100k_ranks(str(copy))


def test_tiny_tokenizer_has_phi4_specials_and_template():
    texts = ["Tom has 3 apples and buys 4 more. How many apples? The answer is 7."] * 20
    tok = train_tiny_tokenizer(texts, vocab_size=400)
    assert len(tok) <= 400
    assert tok.convert_tokens_to_ids(TINY_SPECIAL_TOKENS) == list(range(len(TINY_SPECIAL_TOKENS)))
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id != tok.eos_token_id
    rendered = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>"
    with pytest.raises(ValueError, match="vocab_size"):
        train_tiny_tokenizer(texts, vocab_size=100)


def test_phi4_replies_stop_at_im_end_then_the_document_separator(phi4_tokenizer):
    from phi4_recipes.tokenizer import stop_token_ids

    # <|im_end|> (the template's end of turn and the eos) once, then <|endoftext|>, which ends a reply too.
    assert stop_token_ids(phi4_tokenizer) == [100_265, 100_257]


def test_saved_tokenizer_config_is_portable_to_transformers_4(tmp_path):
    """transformers 5 writes `tokenizer_class: TokenizersBackend`, which 4.x cannot load; upstream phi-4 names a
    class every release knows and keeps the chat template inline."""
    import json

    from transformers import AutoTokenizer

    from phi4_recipes.model_loading import tiny_tokenizer
    from phi4_recipes.tokenizer import load_chat_template, make_tokenizer_config_portable

    tiny_tokenizer().save_pretrained(tmp_path)
    make_tokenizer_config_portable(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert config["model_input_names"] == ["input_ids", "attention_mask"]
    assert config["chat_template"] == load_chat_template()
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.encode("12 + 7 = 19") == tiny_tokenizer().encode("12 + 7 = 19")
    assert reloaded.chat_template == load_chat_template()
