"""Preference pairs -> exact token ids for DPO.

TRL's DPOTrainer tokenises `prompt + chosen` text itself, appends EOS to plain-text completions and closes
chat completions with `<|im_end|>`. That is right for full responses and wrong for Pivotal Token Search
pairs, whose chosen and rejected sides are single tokens found by the search: decoding them to text and
re-encoding can give other ids (" 4" + "2" re-encodes as " 42"), and an appended `<|im_end|>` would train on
a token the search never saw. So every pair reaches the trainer as ids we computed:

- rows with `prompt_ids`/`chosen_ids`/`rejected_ids` (PTS exports) are used exactly as they are;
- conversational rows (lists of messages) are rendered with the chat template; the completion is the
  assistant turn including its `<|im_end|>`, i.e. what the model generates;
- plain-text rows get the tokenizer's EOS after the completion.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Dataset

#: The exact-id columns of a preference row, as TRL's DPOTrainer names its tokenised columns; the PTS export
#: (`pts/runner/export.py`) writes them under these names, and this module hands them to the trainer.
ID_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
TEXT_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class PreparedPairs:
    dataset: Dataset
    kept: int
    dropped_too_long: int
    exact_ids: int  # rows whose ids came from the dataset itself


def _chat_ids(tokenizer, messages) -> list[int]:
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]


def _completion_ids(tokenizer, prompt, completion) -> tuple[list[int], list[int]]:
    if isinstance(prompt, list):
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"]
        full = _chat_ids(tokenizer, prompt + completion)
        if full[: len(prompt_ids)] != prompt_ids:
            raise ValueError("the chat template renders the prompt differently inside the full conversation")
        return prompt_ids, full[len(prompt_ids):]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids, completion


def prepare_preference_pairs(dataset: Dataset, tokenizer, max_length: int | None, name: str) -> PreparedPairs:
    """Return `dataset` with `prompt_ids`, `chosen_ids`, `rejected_ids`; pairs over `max_length` are dropped
    and counted (never truncated: a truncated pair trains on a different comparison)."""
    columns = set(dataset.column_names)
    has_ids = set(ID_COLUMNS) <= columns
    if not has_ids:
        missing = [c for c in TEXT_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"dataset {name}: missing column(s) {missing} (or give {list(ID_COLUMNS)}); "
                             f"it has {sorted(columns)}")

    def to_ids(row, index):
        if has_ids:
            prompt, chosen, rejected = (list(row[c]) for c in ID_COLUMNS)
        else:
            try:
                prompt, chosen = _completion_ids(tokenizer, row["prompt"], row["chosen"])
                prompt_r, rejected = _completion_ids(tokenizer, row["prompt"], row["rejected"])
            except Exception as err:
                raise ValueError(f"dataset {name}, row {index}: cannot tokenise the pair: {err}") from err
            if prompt_r != prompt:
                raise ValueError(f"dataset {name}, row {index}: chosen and rejected render different prompts")
        if not prompt or not chosen or not rejected:
            raise ValueError(f"dataset {name}, row {index}: empty prompt, chosen or rejected")
        return dict(zip(ID_COLUMNS, (prompt, chosen, rejected), strict=True))

    extra = [c for c in dataset.column_names if c not in ID_COLUMNS]
    tokenised = dataset.map(to_ids, with_indices=True, remove_columns=extra if not has_ids else [],
                            desc=f"tokenising {name}")
    tokenised = tokenised.select_columns(list(ID_COLUMNS))
    if max_length is None:
        return PreparedPairs(tokenised, len(tokenised), 0, len(tokenised) if has_ids else 0)
    fits = [
        len(p) + max(len(c), len(r)) <= max_length
        for p, c, r in zip(*(tokenised[column] for column in ID_COLUMNS), strict=True)
    ]
    kept = tokenised.select([i for i, ok in enumerate(fits) if ok])
    return PreparedPairs(kept, len(kept), len(fits) - len(kept), len(kept) if has_ids else 0)
