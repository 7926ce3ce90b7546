"""The report's Pivotal Token Search as published, kept as the reference to beat.

Faithful to the pseudo-code of the Phi-4 report (section 4.3) and the public implementations:
each needed prefix is estimated once with a fixed number of rollouts ``n_rollouts``; segments are
split at the token-count midpoint; a one-token segment whose end-points differ by at least
``p_gap`` is a pivot, with no confirmation. It gets two courtesies so that the comparison is not
padded: the full response's success is the oracle's verdict (no rollouts), and an estimate is
never recomputed for a prefix it already has.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import PTSConfig
from ..estimator import RolloutLedger
from ..protocols import IdsOracle, Sampler
from ..result import Pivot, PrefixEstimate, PTSResult
from ..search import result_from_ledger


def find_pivotal_tokens_baseline(
    query_ids: Sequence[int],
    response_ids: Sequence[int],
    sampler: Sampler,
    oracle: IdsOracle,
    n_rollouts: int,
    config: PTSConfig | None = None,
) -> PTSResult:
    """Run the report's algorithm with ``n_rollouts`` rollouts per estimated prefix.

    :param query_ids: query token ids.
    :param response_ids: response token ids.
    :param sampler: continuation sampler (its log-probs, if any, are ignored).
    :param oracle: judges whole responses.
    :param n_rollouts: the fixed N of every estimate.
    :param config: only ``p_gap``, ``p_min``, ``p_max`` and ``seed`` are used.
    :returns: a :class:`PTSResult` without pairs, in the same format as the improved search.
    """
    config = config or PTSConfig()
    ledger = RolloutLedger(query_ids, response_ids, sampler, oracle, config.seed, config.confidence_z)
    estimates: dict[int, float] = {len(response_ids): float(ledger.response_correct)}

    def p(position: int) -> float:
        if position not in estimates:
            ledger.sample(position, n_rollouts, f"fixed{position}")
            tally = ledger.tally(position, f"fixed{position}")
            estimates[position] = tally.successes / tally.trials
        return estimates[position]

    p_query = p(0)
    if not config.p_min <= p_query <= config.p_max:
        return _result(ledger, config, "filtered", p_query, [], estimates)

    pivots = []
    stack = [(0, len(response_ids))]
    while stack:
        start, end = stack.pop()
        delta = p(end) - p(start)
        if end - start == 1:
            if abs(delta) >= config.p_gap:
                pivots.append(start)
            continue
        if abs(delta) < config.p_gap:
            continue
        middle = (start + end) // 2
        stack.append((middle, end))
        stack.append((start, middle))
    return _result(ledger, config, "searched", p_query, sorted(pivots), estimates)


def _result(
    ledger: RolloutLedger,
    config: PTSConfig,
    status: str,
    p_query: float,
    positions: list[int],
    estimates: dict[int, float],
) -> PTSResult:
    # Each prefix has its own stream, so no rollout is credited to another prefix: the baseline
    # uses exactly N independent rollouts per estimate.
    rows = {
        position: ledger.tally(position, f"fixed{position}")
        for position in sorted(estimates)
        if position < ledger.length
    }
    end_tally = (int(ledger.response_correct), 0)

    def counts(position: int) -> tuple[int, int]:
        return (rows[position].successes, rows[position].trials) if position in rows else end_tally

    pivots = [
        Pivot(i, ledger.response_ids[i], estimates[i], estimates[i + 1], *counts(i), *counts(i + 1))
        for i in positions
    ]
    return result_from_ledger(ledger, config, status, p_query, pivots=pivots,
                              estimates=[PrefixEstimate(i, t.successes, t.trials) for i, t in rows.items()],
                              rollouts_by_stream={"search": ledger.total_rollouts}, used_logprobs=False)
