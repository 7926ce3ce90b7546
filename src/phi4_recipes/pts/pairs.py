"""Turn a pivot into a single-token preference pair.

The pivot token is one side of the pair. The other side is another first token seen in rollouts
from the same prefix: one that lands on the opposite side of the pivot by at least ``p_gap``.
Such a token must exist in expectation, because p(prefix) is the probability-weighted average of
p(prefix + t) over first tokens t, so if the pivot token drops p some alternative lies above it.
"""

from __future__ import annotations

from .config import PTSConfig
from .estimator import RolloutLedger, Tally, next_batch
from .result import Pivot, PivotPair
from .stats import wilson_interval


def select_pair(ledger: RolloutLedger, pivot: Pivot, config: PTSConfig) -> PivotPair | None:
    """Pick the alternative token for ``pivot`` and return the pair, or ``None`` if none qualifies.

    Alternatives are tried in order of how far their optimistic bound reaches to the far side of
    the pivot token (so a token seen once is not written off); each tried one is topped up to
    ``config.pair_trials`` rollouts starting with it, and the first whose estimate is at least
    ``p_gap`` away from the pivot token's, on the right side, is used.

    :param ledger: the search's rollouts (first-token tallies at ``pivot.position`` are read and
        extended).
    :param pivot: an accepted pivot.
    :param config: search settings.
    :returns: a :class:`PivotPair` with both sides' estimates and counts, or ``None``.
    """
    position, token = pivot.position, pivot.token_id
    pivot_raises = pivot.p_after > pivot.p_before
    observed = {t: tally for t, tally in ledger.first_token_tallies(position).items() if t != token and tally.trials}

    def reach(t: int) -> tuple[float, int, int]:
        tally = observed[t]
        low, high = wilson_interval(tally.successes, tally.trials, ledger.z)
        margin = pivot.p_after - low if pivot_raises else high - pivot.p_after
        return (-margin, -tally.trials, t)

    for alternative in sorted(observed, key=reach)[: config.pair_max_alternatives]:
        tally = ledger.first_token_tallies(position)[alternative]
        batch = next_batch(tally.trials, config.pair_trials, config.pair_trials)
        if batch:
            ledger.sample_alternative(position, alternative, batch)
        p_alternative = tally.successes / tally.trials
        margin = pivot.p_after - p_alternative if pivot_raises else p_alternative - pivot.p_after
        if margin >= config.p_gap:
            return _pair(ledger, pivot, alternative, tally, pivot_raises)
    return None


def _pair(ledger: RolloutLedger, pivot: Pivot, alternative: int, tally: Tally, pivot_raises: bool) -> PivotPair:
    pivot_side = (pivot.token_id, pivot.p_after, pivot.successes_after, pivot.trials_after)
    other_side = (alternative, tally.successes / tally.trials, tally.successes, tally.trials)
    chosen, rejected = (pivot_side, other_side) if pivot_raises else (other_side, pivot_side)
    return PivotPair(
        position=pivot.position,
        prefix_ids=ledger.response_ids[: pivot.position],
        chosen_token_id=chosen[0],
        rejected_token_id=rejected[0],
        p_chosen=chosen[1],
        p_rejected=rejected[1],
        chosen_successes=chosen[2],
        chosen_trials=chosen[3],
        rejected_successes=rejected[2],
        rejected_trials=rejected[3],
        p_before=pivot.p_before,
        chosen_is_pivot=pivot_raises,
    )
