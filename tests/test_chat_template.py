import json
import re

import jinja2
import pytest

from phi4_recipes.tokenizer import (
    build_phi4_tokenizer,
    load_chat_template,
    load_training_chat_template,
    make_tokenizer_config_portable,
    train_tiny_tokenizer,
)

# microsoft/phi-4's tokenizer_config.json chat_template, verbatim: what our saved template must render like.
UPSTREAM_PHI4_TEMPLATE = (
    "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + "
    "message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + "
    "message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'assistant') %}{{'<|im_start|>assistant"
    "<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
)


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


TOOL_TURN = [{"role": "user", "content": "Weather?"}, {"role": "tool", "content": "sunny"},
             {"role": "assistant", "content": "Sunny."}]


def test_tool_role_is_dropped_at_inference_as_upstream_and_refused_in_training(tokenizer):
    # The shipped template behaves as microsoft/phi-4's: a tool turn leaves no trace in the prompt.
    assert tokenizer.apply_chat_template(TOOL_TURN, tokenize=False) == (
        "<|im_start|>user<|im_sep|>Weather?<|im_end|><|im_start|>assistant<|im_sep|>Sunny.<|im_end|>")
    # Training data with a tool turn would silently lose it, so the training template refuses it.
    with pytest.raises(Exception, match="unknown role 'tool'"):
        tokenizer.apply_chat_template(TOOL_TURN, tokenize=False, chat_template=load_training_chat_template())


CASES = [(CONVERSATION, False), (CONVERSATION[1:2], True), (CONVERSATION[:2], True), (CONVERSATION, True),
         (TOOL_TURN, False), ([], True)]


@pytest.fixture(scope="module")
def saved_template(tokenizer, tmp_path_factory) -> str:
    """The chat template a checkpoint folder holds (as written by save_pretrained + our portable config)."""
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    make_tokenizer_config_portable(folder)
    inline = json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
    assert inline == (folder / "chat_template.jinja").read_text()
    return inline


def test_saved_template_renders_in_plain_jinja2_exactly_as_upstream(saved_template):
    # Plain jinja2 (llama-cpp-python, text-generation-webui) has no {% generation %} tag.
    assert re.search(r"{%-?\s*(end)?generation", saved_template) is None
    ours, upstream = jinja2.Template(saved_template), jinja2.Template(UPSTREAM_PHI4_TEMPLATE)
    for messages, prompt in CASES:
        assert ours.render(messages=messages, add_generation_prompt=prompt) == upstream.render(
            messages=messages, add_generation_prompt=prompt)
    assert ours.render(messages=CONVERSATION[1:2], add_generation_prompt=True) == (
        "<|im_start|>user<|im_sep|>What is 2+2?<|im_end|><|im_start|>assistant<|im_sep|>")


def test_saved_template_renders_no_trailing_newline_where_the_engine_keeps_it(saved_template):
    # An engine set to keep_trailing_newline renders a newline that ends the template file after <|im_sep|>, so
    # the model would start its reply after a "\n" it never saw in training.
    env = jinja2.Environment(keep_trailing_newline=True)
    ours, upstream = env.from_string(saved_template), env.from_string(UPSTREAM_PHI4_TEMPLATE)
    for messages, prompt in CASES:
        assert ours.render(messages=messages, add_generation_prompt=prompt) == upstream.render(
            messages=messages, add_generation_prompt=prompt)
    assert env.from_string(load_chat_template()).render(messages=CONVERSATION[1:2], add_generation_prompt=True) \
        == "<|im_start|>user<|im_sep|>What is 2+2?<|im_end|><|im_start|>assistant<|im_sep|>"


def test_saved_tokenizer_config_has_no_keys_leaked_from_loading(tokenizer, tmp_path):
    # transformers 5 writes back how it loaded the tokenizer (`is_local`, `local_files_only`, `backend`): machine
    # state, not tokenizer settings, which 4.x would pass on as unknown init kwargs.
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path / "first")
    AutoTokenizer.from_pretrained(tmp_path / "first").save_pretrained(tmp_path / "second")
    make_tokenizer_config_portable(tmp_path / "second")
    config = json.loads((tmp_path / "second" / "tokenizer_config.json").read_text())
    assert not {"is_local", "local_files_only", "backend"} & set(config), sorted(config)
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "second")
    assert reloaded.apply_chat_template(CONVERSATION, tokenize=False) == tokenizer.apply_chat_template(
        CONVERSATION, tokenize=False)


def test_saved_template_renders_in_minijinja_exactly_as_upstream(saved_template):
    minijinja = pytest.importorskip("minijinja")  # TGI's template engine (dev extra)
    env = minijinja.Environment(templates={"ours": saved_template, "upstream": UPSTREAM_PHI4_TEMPLATE})
    for messages, prompt in CASES:
        assert env.render_template("ours", messages=messages, add_generation_prompt=prompt) == \
            env.render_template("upstream", messages=messages, add_generation_prompt=prompt)


def test_training_template_renders_the_same_text_as_the_shipped_one(tokenizer):
    for messages, prompt in CASES[:4]:
        assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                             chat_template=load_training_chat_template()) == \
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    assert tokenizer.chat_template == load_chat_template() != load_training_chat_template()


@pytest.mark.parametrize("make_tokenizer", ["phi4", "tiny"])
def test_assistant_mask_covers_assistant_content_and_im_end_only(tokenizer, make_tokenizer):
    tok = tokenizer if make_tokenizer == "phi4" else train_tiny_tokenizer(
        [m["content"] for m in CONVERSATION] * 10, vocab_size=320
    )
    out = tok.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True,
                                  chat_template=load_training_chat_template())
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
