"""Pivotal Token Search: find the response tokens that move the chance of a correct answer.

The report's algorithm (Phi-4 report, section 4.3) estimates p(success | query + prefix) by
sampling, and recursively halves every segment whose end-points differ by at least ``p_gap``;
a one-token segment that still does is a pivot. This implementation keeps that recursion and
its stop rule, and changes where rollouts are spent:

* the query filter is a sequential test: it stops after one small batch when p(empty prefix) is clearly
  in or out of range, and spends up to ``filter_max_trials`` only on questions near a band edge; it drops a
  question only on a stricter interval than it keeps one (a dropped question loses all its pivots), and counts
  the responses sampled before the search as free evidence for p(question);
* the change across a segment is decided with confidence bounds, sampling only the input that
  is least certain, instead of a fixed N per prefix; a segment still in doubt at the cap is
  split rather than pruned when its change is near ``p_gap`` (splitting costs rollouts, pruning
  can cost a pivot);
* every rollout is reused for every prefix it is a sample of, and with log-probs the change is
  estimated by stratifying on whether rollouts follow the response (see ``estimator.py``);
* with token log-probs, a token t drawn with probability pi(t) can move p by at most
  ``1 - pi(t)`` (p(prefix) is a pi-weighted average of values in [0, 1]), so tokens with
  ``1 - pi(t) < p_gap`` cannot be pivots: segments holding none are pruned unsampled, and splits go
  to the midpoint of cumulative headroom ``1 - pi`` rather than of the token count;
* a candidate pivot is accepted only after fresh rollouts confirm it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from .config import PTSConfig
from .estimator import (
    CONFIRM,
    SEARCH,
    DrawCache,
    PrefixStats,
    RolloutLedger,
    decide_gap,
    estimate_change,
    estimate_success,
)
from .pairs import select_pair
from .protocols import IdsOracle, Sampler, token_logprobs_of
from .result import Pivot, PrefixEstimate, PTSResult


def find_pivotal_tokens(
    query_ids: Sequence[int],
    response_ids: Sequence[int],
    sampler: Sampler,
    oracle: IdsOracle,
    config: PTSConfig | None = None,
    draws: DrawCache | None = None,
    question_verdicts: Sequence[bool] = (),
) -> PTSResult:
    """Search one response for pivotal tokens and build their DPO pairs.

    :param query_ids: query token ids (only the sampler sees them).
    :param response_ids: the response to search, as token ids.
    :param sampler: draws continuations; see :class:`~phi4_recipes.pts.protocols.Sampler`.
    :param oracle: ``oracle(response_ids) -> bool``; judges whole responses, never the query.
    :param config: search settings; ``PTSConfig()`` when omitted.
    :param draws: rollouts shared with earlier searches of the same query and seed (see ``RolloutLedger``);
        the result is the same with or without it, only cheaper.
    :param question_verdicts: the oracle's verdicts on every response sampled from the empty prefix before this
        search (those this response was chosen from, all of them): free evidence for p(question).
    :returns: a :class:`~phi4_recipes.pts.result.PTSResult`; ``status == "filtered"`` (and no pivots)
        when p(empty prefix) is outside ``[config.p_min, config.p_max]``.
    """
    config = config or PTSConfig()
    if not response_ids:
        raise ValueError("cannot search an empty response")
    token_logprobs = token_logprobs_of(sampler) if config.use_logprobs else None
    logprobs = list(token_logprobs(query_ids, response_ids)) if token_logprobs is not None else None
    ledger = RolloutLedger(query_ids, response_ids, sampler, oracle, config.seed, config.confidence_z, logprobs,
                           draws)
    ledger.count_question_samples(question_verdicts)
    query = estimate_success(
        ledger, 0, SEARCH, (config.p_min, config.p_max), config.min_trials, config.filter_max_trials,
        reject_z=config.reject_z,
    )
    if not keeps_query(ledger.stats(0, SEARCH, config.reject_z), config):
        return _result(ledger, config, "filtered", query.p, [])

    candidates, weights = _candidates(logprobs, ledger.length, config.p_gap)
    positions = subdivide(ledger, candidates, weights, config)
    return _result(ledger, config, "searched", query.p, _pivots(ledger, positions, config))


def _candidates(logprobs: list[float] | None, length: int, p_gap: float) -> tuple[list[int], list[float]]:
    """Positions that may be pivotal, with their split weights: with log-probs, only tokens whose headroom
    (1 - p(token)) reaches ``p_gap`` (a likelier token cannot move p by that much), weighted by headroom."""
    if logprobs is None:
        return list(range(length)), [1.0] * length
    headroom = [1.0 - math.exp(min(0.0, lp)) for lp in logprobs]
    return [i for i, h in enumerate(headroom) if h >= p_gap], headroom


def _pivots(ledger: RolloutLedger, positions: Sequence[int], config: PTSConfig) -> list[Pivot]:
    """The pivots at ``positions``, estimated on the confirmation stream (or the search's, unconfirmed)."""
    stream = CONFIRM if config.confirm else SEARCH
    z = config.confirm_z if config.confirm else config.confidence_z
    pivots = []
    for i in positions:
        after = ledger.stats(i + 1, stream)
        change = estimate_change(ledger, i, i + 1, stream, z)
        before = ledger.stats(i, stream)
        pivots.append(
            Pivot(
                position=i,
                token_id=ledger.response_ids[i],
                p_before=min(1.0, max(0.0, after.p - change.diff)),
                p_after=after.p,
                successes_before=before.successes,
                trials_before=before.trials,
                successes_after=after.successes,
                trials_after=after.trials,
            )
        )
    return pivots


def keeps_query(query: PrefixStats, config: PTSConfig) -> bool:
    """The question filter's verdict: p(empty prefix) in ``[p_min, p_max]``, or (``keep_undecided``) its
    interval (at ``reject_z``) still reaching into the band after ``filter_max_trials`` rollouts."""
    if config.p_min <= query.p <= config.p_max:
        return True
    return config.keep_undecided and not query.exact and query.low <= config.p_max and query.high >= config.p_min


def subdivide(
    ledger: RolloutLedger, candidates: Sequence[int], weights: Sequence[float], config: PTSConfig
) -> list[int]:
    """The report's recursive subdivision, over prefix lengths ``[start, end)``.

    A segment stops when it holds no candidate token, or when its endpoints differ by less than
    ``p_gap`` (the report's rule, which assumes p is near-monotone inside a segment); otherwise it
    is split at the weighted midpoint of its candidates. A segment with one candidate jumps
    straight to that token, since no other token in it can be a pivot.

    :param ledger: the search's rollouts.
    :param candidates: sorted token positions that may be pivots.
    :param weights: per-token split weight (headroom ``1 - pi``, or 1 for token-count midpoints).
    :param config: search settings.
    :returns: sorted positions of accepted pivots.
    """
    accepted = []
    stack = [(0, ledger.length)]
    while stack:
        start, end = stack.pop()
        inside = candidates[bisect.bisect_left(candidates, start) : bisect.bisect_left(candidates, end)]
        if not inside:
            continue
        if end - start > 1:
            segment = decide_gap(
                ledger, start, end, SEARCH, config.p_gap, config.min_trials, config.max_trials,
                margin=config.unresolved_margin,
            )
            if not segment.reached:
                continue
        if len(inside) == 1:
            if is_pivot(ledger, inside[0], config):
                accepted.append(inside[0])
            continue
        middle = split_point(inside, weights)
        stack.append((middle, end))
        stack.append((start, middle))
    return sorted(accepted)


def split_point(inside: Sequence[int], weights: Sequence[float]) -> int:
    """Prefix length that splits the candidates ``inside`` into two halves of equal weight.

    With unit weights this is the token-count midpoint. The boundary goes right before the first
    candidate of the right half, or right after the last candidate of the left half, whichever side
    has fewer candidates, so that a side left with one candidate already has one of its two
    endpoint estimates.

    :param inside: sorted candidate positions, at least two.
    :param weights: per-token weights.
    :returns: a prefix length strictly between ``inside[0]`` and ``inside[-1] + 1``.
    """
    cumulative = [0.0]
    for i in inside:
        cumulative.append(cumulative[-1] + weights[i])
    half = cumulative[-1] / 2
    # j candidates go left; 1 <= j <= len(inside) - 1
    j = min(range(1, len(inside)), key=lambda k: (abs(cumulative[k] - half), k))
    right_count = len(inside) - j
    return inside[j] if right_count <= j else inside[j - 1] + 1


def is_pivot(ledger: RolloutLedger, position: int, config: PTSConfig) -> bool:
    """Whether the token at ``position`` moves p by at least ``p_gap``.

    With confirmation on, the search rollouts only nominate (kept unless ruled out), and the
    verdict comes from a fresh confirmation stream at both endpoints, so the estimate that
    selected a token cannot also be the one that accepts it.
    """
    nominated = decide_gap(
        ledger,
        position,
        position + 1,
        SEARCH,
        config.p_gap,
        config.min_trials,
        config.max_trials,
        margin=config.nominate_margin if config.confirm else 0.0,
    )
    if not nominated.reached or not config.confirm:
        return nominated.reached
    confirmed = decide_gap(
        ledger, position, position + 1, CONFIRM, config.p_gap, config.min_trials, config.confirm_max_trials,
        z=config.confirm_z,
    )
    return confirmed.reached


def _result(
    ledger: RolloutLedger,
    config: PTSConfig,
    status: str,
    p_query: float,
    pivots: list[Pivot],
) -> PTSResult:
    pairs = []
    if config.make_pairs:
        for pivot in pivots:
            pair = select_pair(ledger, pivot, config)
            if pair is not None:
                pairs.append(pair)
    counts: dict[int, dict[str, int]] = {}
    for (stream, position), tally in ledger.tallies().items():
        row = counts.setdefault(position, {})
        prefix = "" if stream == SEARCH else "confirm_"
        row[prefix + "successes"] = tally.successes
        row[prefix + "trials"] = tally.trials
    estimates = [
        PrefixEstimate(position, row.get("successes", 0), row.get("trials", 0),
                       row.get("confirm_successes", 0), row.get("confirm_trials", 0))
        for position, row in sorted(counts.items())
    ]
    return result_from_ledger(ledger, config, status, p_query, pivots=pivots, pairs=pairs, estimates=estimates,
                              rollouts_by_stream=dict(sorted(ledger.rollouts.items())),
                              used_logprobs=ledger.has_logprobs)


def result_from_ledger(ledger: RolloutLedger, config: PTSConfig, status: str, p_query: float, **found) -> PTSResult:
    """A :class:`PTSResult` whose inputs, verdict and rollout total come from the ledger; ``found`` is the rest."""
    return PTSResult(query_ids=list(ledger.query_ids), response_ids=list(ledger.response_ids), config=config,
                     status=status, p_query=p_query, response_correct=ledger.response_correct,
                     rollouts=ledger.total_rollouts, reused_rollouts=sum(ledger.reused.values()), **found)
