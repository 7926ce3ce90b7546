"""The embedded default backend: batched sampling with a transformers causal LM, CPU or GPU.

One call prefills all prompts of a chunk once (left-padded, batch B), copies each prompt's KV cache
to its n sample rows, and decodes the B * n rows together. Finished rows are dropped from the cache,
so a batch runs as long as its longest live continuation and no longer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from .base import Generator, decode_completion_text
from .sampling import sample_next_tokens
from .types import Completion, SamplingParams, prompt_seed


def _in_eval_mode(method):
    """Run `method` with the model in eval mode (no dropout), then restore the caller's mode.

    A trainer may hand its model to a generator mid-training; sampling must not leave it in eval mode.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.model.train(was_training)

    return wrapper


class TransformersGenerator(Generator):
    """`Generator` over a transformers causal LM (anything taking `cache=` and `logits_to_keep=`).

    Args:
        model: an nn.Module, or a local folder / Hub id loaded with AutoModelForCausalLM.
        tokenizer: used for text and chat; loaded from `model` when it is a path and this is None.
        max_batch_rows: most sequences decoded at once (prompts in a chunk times n); bounds memory.
        share_prefix: prefill each prompt once and copy its cache to the n rows (True), or prefill
            every row on its own (False, the naive baseline; results are identical, only slower).
        dtype, device: used when loading from a path.
    """

    def __init__(
        self,
        model: nn.Module | str,
        tokenizer=None,
        *,
        max_batch_rows: int = 64,
        share_prefix: bool = True,
        dtype: str | torch.dtype = "auto",
        device: str | None = None,
    ):
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            loaded = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
            tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(model)
            model = loaded.to(device) if device else loaded
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_rows = max_batch_rows
        self.share_prefix = share_prefix
        self.eos_token_ids = _eos_token_ids(model, tokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        prompts = [[int(t) for t in p] for p in prompts]
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token id")
        stop_ids = set(params.stop_token_ids) | (set() if params.ignore_eos else set(self.eos_token_ids))
        prompts_per_chunk = max(1, self.max_batch_rows // params.n)
        results: list[list[Completion]] = []
        for start in range(0, len(prompts), prompts_per_chunk):
            chunk = prompts[start : start + prompts_per_chunk]
            seeds = [prompt_seed(params.seed, start + i) for i in range(len(chunk))]
            results.extend(self._generate_chunk(chunk, seeds, params, stop_ids))
        return results

    @torch.inference_mode()
    @_in_eval_mode
    def token_logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        if len(prompt_ids) == 0:
            raise ValueError("token_logprobs needs at least one prompt token to condition on")
        if len(continuation_ids) == 0:
            return []
        ids = torch.tensor([list(prompt_ids) + list(continuation_ids)], device=self.device)
        # Only positions that predict a continuation token are projected onto the vocabulary.
        keep = len(continuation_ids) + 1
        logits = self.model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits[0, :-1].float()
        targets = ids[0, -len(continuation_ids) :]
        return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1).tolist()

    @torch.inference_mode()
    @_in_eval_mode
    def _prefill(self, prompts: list[list[int]], n: int):
        """One forward pass over the prompts, each row repeated n times (shared prefix: the cache is copied n
        times after one prefill per prompt); returns the cache, last logits, mask and next positions."""
        rows_per_prefill = 1 if self.share_prefix else n
        batch_prompts = [p for p in prompts for _ in range(rows_per_prefill)]
        input_ids, attention_mask = _left_pad(batch_prompts, self.device)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            use_cache=True, logits_to_keep=1,
        )
        cache, logits = out.cache, out.logits[:, -1]
        if self.share_prefix and n > 1:
            cache.batch_repeat_interleave(n)
            attention_mask = attention_mask.repeat_interleave(n, dim=0)
            position_ids = position_ids.repeat_interleave(n, dim=0)
            logits = logits.repeat_interleave(n, dim=0)
        return cache, logits, attention_mask, position_ids[:, -1] + 1

    def _generate_chunk(
        self, prompts: list[list[int]], seeds: list[int], params: SamplingParams, stop_ids: set[int]
    ) -> list[list[Completion]]:
        n, device = params.n, self.device
        rngs = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        cache, logits, attention_mask, next_position = self._prefill(prompts, n)

        num_rows = len(prompts) * n
        live = torch.arange(num_rows, device=device)  # global row index of each cache row
        stop_tensor = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
        token_ids = [[] for _ in range(num_rows)]
        logprobs = [[] for _ in range(num_rows)]
        finish = ["length"] * num_rows
        for step in range(params.max_new_tokens):
            # Every prompt draws n uniforms per step, live or not, so its stream never depends on others.
            uniforms = torch.cat([torch.rand(n, generator=g, dtype=torch.float64) for g in rngs]).to(device)
            tokens, token_lps = sample_next_tokens(logits, uniforms[live], params.temperature, params.top_p)
            for row, tok, lp in zip(live.tolist(), tokens.tolist(), token_lps.tolist()):
                token_ids[row].append(tok)
                logprobs[row].append(lp)
            stopped = torch.isin(tokens, stop_tensor)
            for row in live[stopped].tolist():
                finish[row] = "stop"
            if step == params.max_new_tokens - 1 or bool(stopped.all()):
                break
            if bool(stopped.any()):
                keep = (~stopped).nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                live, tokens = live[keep], tokens[keep]
                attention_mask, next_position = attention_mask[keep], next_position[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(live), 1)], dim=-1)
            out = self.model(
                input_ids=tokens[:, None], attention_mask=attention_mask, position_ids=next_position[:, None],
                cache=cache, use_cache=True,
            )
            cache, logits = out.cache, out.logits[:, -1]
            next_position = next_position + 1

        completions = [
            Completion(
                token_ids=token_ids[row],
                text=decode_completion_text(self.tokenizer, token_ids[row], finish[row]),
                logprobs=logprobs[row],
                finish_reason=finish[row],
            )
            for row in range(num_rows)
        ]
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]


def _left_pad(prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids and attention mask, padded on the left so every row's last token is at -1.

    The pad id is irrelevant (masked out), so 0 is used rather than asking the tokenizer.
    """
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _eos_token_ids(model: nn.Module, tokenizer) -> list[int]:
    """End-of-turn ids: generation_config.eos_token_id (Phi-4 puts <|im_end|> there), else the tokenizer's."""
    generation_config = getattr(model, "generation_config", None)
    eos = getattr(generation_config, "eos_token_id", None)
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(e) for e in eos] if isinstance(eos, list | tuple) else [int(eos)]
