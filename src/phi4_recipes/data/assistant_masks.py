"""Assistant-only loss masks for chat templates without `{% generation %}` markers, by template diff.

TRL's `assistant_only_loss` asks the template to mark assistant tokens (`{% generation %}`); most models'
own templates (Llama, Qwen, Mistral, SmolLM) have no such markers. Here the mask comes from rendering the
conversation itself: the tokens an assistant turn adds are those between the conversation up to that turn
with the generation prompt (`...<|im_start|>assistant\n`) and the conversation including the turn
(`...answer<|im_end|>\n`). Text the template emits after the turn's end-of-turn token (ChatML's newline)
is left out, since the model stops at that token and never generates it.

The result is a pre-tokenised dataset (`input_ids`, `assistant_masks`), which SFTTrainer turns into labels
as it does for its own masks.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset


def _ids(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> list[int]:
    return list(tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                              add_generation_prompt=add_generation_prompt)["input_ids"])


def _require_prefix(prefix: list[int], ids: list[int], what: str) -> None:
    if ids[: len(prefix)] != prefix:
        raise ValueError(f"the chat template is not prefix-preserving: {what} renders differently inside the "
                         "whole conversation, so assistant tokens cannot be found by template diff; give the "
                         "template {% generation %} markers (or set chat_template: phi4)")


def assistant_mask_by_template_diff(tokenizer, messages: Sequence[dict], end_of_turn_id: int
                                    ) -> tuple[list[int], list[int]]:
    """(input_ids, assistant_masks) of one conversation: 1 on each assistant turn's content and its end-of-turn
    token, 0 elsewhere.

    :raises ValueError: the template renders a prefix of the conversation differently from the whole (a
        template that, e.g., rewrites earlier turns), or an assistant turn lacks its end-of-turn token.
    """
    input_ids = _ids(tokenizer, messages)
    mask = [0] * len(input_ids)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start_ids = _ids(tokenizer, messages[:index], add_generation_prompt=True)
        end_ids = _ids(tokenizer, messages[: index + 1])
        _require_prefix(start_ids, end_ids, f"the prompt before assistant turn {index}")
        _require_prefix(end_ids, input_ids, f"the conversation up to assistant turn {index}")
        turn = end_ids[len(start_ids):]
        if end_of_turn_id not in turn:
            raise ValueError(f"assistant turn {index} does not end with the end-of-turn token id {end_of_turn_id}")
        stop = len(start_ids) + len(turn) - turn[::-1].index(end_of_turn_id)  # through the last end-of-turn
        mask[len(start_ids):stop] = [1] * (stop - len(start_ids))
    return input_ids, mask


def tokenize_with_assistant_masks(dataset: Dataset, tokenizer, end_of_turn_id: int, name: str) -> Dataset:
    """A `messages` dataset as `input_ids` + `assistant_masks` (template-diff masks); a row with no assistant
    token fails naming the dataset and row."""

    def to_ids(row, index):
        try:
            input_ids, mask = assistant_mask_by_template_diff(tokenizer, row["messages"], end_of_turn_id)
        except ValueError as err:
            raise ValueError(f"dataset {name}, row {index}: {err}") from err
        if 1 not in mask:
            raise ValueError(f"dataset {name}, row {index}: no assistant turn to train on")
        return {"input_ids": input_ids, "assistant_masks": mask}

    return dataset.map(to_ids, with_indices=True, remove_columns=dataset.column_names,
                       desc=f"assistant masks for {name} (template diff)")


def needs_template_diff_masks(tokenizer, training_args) -> bool:
    """Assistant-only loss on a template without `{% generation %}` markers, and no `chat_template_path` for
    SFTTrainer to load instead: the masks must come from template diff."""
    from trl.chat_template_utils import has_generation_markers

    return bool(training_args.assistant_only_loss and not training_args.chat_template_path
                and tokenizer.chat_template and not has_generation_markers(tokenizer.chat_template))
