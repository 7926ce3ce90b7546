"""Turning next-token logits into sampled ids with caller-supplied uniforms.

Sampling is inverse-CDF on one uniform per row, drawn by the caller from a per-prompt torch.Generator.
That keeps a prompt's samples independent of what else shares its batch, of how the batch is chunked,
and of whether finished rows were dropped, which is what makes every call reproducible from its seed.
"""

from __future__ import annotations

import torch


def sample_next_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row and report its raw log-probability.

    Args:
        logits: (R, V) next-token logits.
        uniforms: (R,) draws in [0, 1), one per row.
        temperature: 0 is greedy; otherwise logits are divided by it before the softmax.
        top_p: keep the smallest most-probable set whose mass reaches top_p, then renormalise.
    Returns:
        token ids (R,) long, and their log_softmax(logits) (R,) float32 at temperature 1 before top-p,
        the distribution PTS and DPO score with.
    """
    logits = logits.float()
    raw_logprobs = torch.log_softmax(logits, dim=-1)
    if temperature == 0:
        tokens = logits.argmax(dim=-1)
    else:
        # float64 so the cumulative sum cannot drift away from 1 over a 100k vocabulary.
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        if top_p < 1.0:
            tokens = _inverse_cdf_top_p(probs, uniforms, top_p)
        else:
            tokens = _inverse_cdf(probs, uniforms.double())
    return tokens, raw_logprobs.gather(-1, tokens[:, None]).squeeze(-1)


def _inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Index i with cdf[i-1] <= u * total < cdf[i]; probs (R, V) need not be normalised."""
    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1]
    # u * total may round up to total; keeping the target strictly below it means the first cdf entry
    # above the target is always a step of the cdf, i.e. a token with non-zero mass.
    targets = torch.minimum(uniforms * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, targets[:, None], right=True).squeeze(-1)


def _inverse_cdf_top_p(probs: torch.Tensor, uniforms: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    # A token stays if the mass ranked above it is still short of top_p; the most likely always stays.
    kept = torch.where(mass_before < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    picked_rank = _inverse_cdf(kept, uniforms.double())
    return order.gather(-1, picked_rank[:, None]).squeeze(-1)
