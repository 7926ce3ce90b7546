"""Success-probability estimates for response prefixes, sampled adaptively and never paid twice.

A :class:`RolloutLedger` owns every rollout of one search. Each rollout is filed as evidence for
every prefix it is a sample of: a continuation drawn from ``response[:k]`` whose first ``j`` tokens
equal ``response[k:k + j]`` is also an unbiased draw from ``response[:k + 1]`` ... ``response[:k + j]``,
and its first token tells us about ``response[:k] + [first_token]`` (which is what pair selection
needs). Estimates are kept in separate *streams* so that a candidate pivot can be re-tested on
rollouts that played no part in selecting it.

With the sampler's token log-probs, the change of p across a segment is estimated by
stratifying on whether a rollout follows the response. A rollout from ``response[:a]`` stays on
the response up to ``b`` with the known probability ``F = prod pi(t_j)``, and then it is a draw
from ``response[:b]``; otherwise it left the response, with success rate ``p_off``. So
``p(a) = F p(b) + (1 - F) p_off`` and ``p(b) - p(a) = (1 - F) (p(b) - p_off)``: the known ``F`` replaces
the sampling noise of how many rollouts happened to follow, and the estimate shrinks towards 0
exactly where no large change is possible.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .protocols import IdsOracle, Sampler
from .stats import derive_seed, difference_interval, wilson_interval

SEARCH = "search"
CONFIRM = "confirm"
PAIR = "pair"


@dataclass
class Tally:
    """Successes out of trials."""

    successes: int = 0
    trials: int = 0

    def add(self, success: bool, count: int = 1) -> None:
        self.successes += int(success) * count
        self.trials += count

    @property
    def p(self) -> float:
        """Point estimate; 0.5 (uninformative) before any trial."""
        return self.successes / self.trials if self.trials else 0.5


@dataclass(frozen=True)
class PrefixStats:
    """What is known about p(success | query + prefix) right now.

    :param p: point estimate (exact for the full response).
    :param low: lower confidence bound.
    :param high: upper confidence bound.
    :param successes: successful rollouts behind the estimate.
    :param trials: rollouts behind the estimate; 0 with ``exact`` means known from the oracle.
    :param exact: the value is the oracle's verdict on the full response, not an estimate.
    """

    p: float
    low: float
    high: float
    successes: int
    trials: int
    exact: bool = False


#: (prefix ids, draw key, round, n) -> the continuations drawn; see ``RolloutLedger``'s ``draws``.
DrawCache = dict[tuple, list[list[int]]]


class RolloutLedger:
    """All rollouts of one search, tallied per (stream, prefix length), per path and per first token.

    :param query_ids: the query tokens, passed to the sampler only.
    :param response_ids: the response being searched.
    :param sampler: see :class:`~phi4_recipes.pts.protocols.Sampler`.
    :param oracle: judges a full response; it never receives the query.
    :param seed: search seed; rollout seeds derive from (seed, stream, position, round).
    :param z: default z-score of the confidence intervals.
    :param logprobs: ``log pi(t_i | t_<i)`` per response token, under the sampling distribution;
        enables the stratified change estimate. ``None`` falls back to differences of prefix estimates.
    :param draws: a :data:`DrawCache` shared by the searches of one question (same query and seed). A
        draw's seed depends only on (seed, stream, position, round) and its distribution only on the prefix,
        so two responses that share a prefix (always the empty one) would draw identical rollouts there:
        the second search reads them from the cache instead (counted in ``reused``, not ``rollouts``).
    """

    def __init__(
        self,
        query_ids: Sequence[int],
        response_ids: Sequence[int],
        sampler: Sampler,
        oracle: IdsOracle,
        seed: int,
        z: float,
        logprobs: Sequence[float] | None = None,
        draws: DrawCache | None = None,
    ) -> None:
        self.query_ids = list(query_ids)
        self.draws = draws
        self.response_ids = list(response_ids)
        self.sampler = sampler
        self.oracle = oracle
        self.seed = seed
        self.z = z
        self._log_follow: list[float] | None = None
        if logprobs is not None:
            if len(logprobs) != len(self.response_ids):
                raise ValueError(f"got {len(logprobs)} log-probs for {len(self.response_ids)} tokens")
            cumulative = [0.0]
            for lp in logprobs:
                cumulative.append(cumulative[-1] + min(0.0, float(lp)))
            self._log_follow = cumulative
        # The full response needs no rollout: its success is the oracle's verdict.
        self.response_correct = bool(oracle(list(self.response_ids)))
        self._tallies: dict[tuple[str, int], Tally] = {}
        # (stream, start) -> Counter of (tokens shared with the response, success)
        self._paths: dict[tuple[str, int], Counter[tuple[int, bool]]] = {}
        self._first_tokens: dict[int, dict[int, Tally]] = {}
        self._rounds: Counter[tuple] = Counter()
        self.rollouts: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()

    @property
    def length(self) -> int:
        return len(self.response_ids)

    @property
    def total_rollouts(self) -> int:
        return sum(self.rollouts.values())

    @property
    def has_logprobs(self) -> bool:
        return self._log_follow is not None

    def follow_probability(self, start: int, end: int) -> float | None:
        """Probability that a rollout from ``response[:start]`` reproduces ``response[start:end]``."""
        if self._log_follow is None:
            return None
        return math.exp(self._log_follow[end] - self._log_follow[start])

    def tally(self, position: int, stream: str) -> Tally:
        """The (mutable) tally of ``response[:position]`` in ``stream``."""
        return self._tallies.setdefault((stream, position), Tally())

    def stats(self, position: int, stream: str, z: float | None = None) -> PrefixStats:
        """Point estimate and Wilson interval of p(success | response[:position])."""
        if position == self.length:
            value = float(self.response_correct)
            return PrefixStats(value, value, value, int(self.response_correct), 0, exact=True)
        tally = self._tallies.get((stream, position), Tally())
        low, high = wilson_interval(tally.successes, tally.trials, self.z if z is None else z)
        return PrefixStats(tally.p, low, high, tally.successes, tally.trials)

    def off_response_tally(self, start: int, end: int, stream: str) -> Tally:
        """Rollouts that were at ``response[:start]`` and left the response before ``end``.

        Counts rollouts drawn at ``start`` and rollouts drawn earlier that followed the response
        up to ``start``; none of them is a draw from ``response[:end]``, so this tally is
        independent of ``tally(end)``.
        """
        out = Tally()
        for (path_stream, origin), paths in self._paths.items():
            if path_stream != stream or origin > start:
                continue
            for (shared, success), count in paths.items():
                if start <= origin + shared < end:
                    out.add(success, count)
        return out

    def count_question_samples(self, verdicts: Sequence[bool]) -> None:
        """File the verdicts of responses sampled from the empty prefix before the search (the ones a response to
        search was chosen from) as evidence for p(question) in the search stream, free.

        All of them, whichever was chosen: together they are an unbiased sample of p(empty prefix). They count
        for that prefix alone, never as samples of the longer prefixes of a response they share tokens with: the
        searched response was chosen by its verdict, so its own path would bias every prefix of itself.
        """
        for verdict in verdicts:
            self.tally(0, SEARCH).add(bool(verdict))

    def tallies(self) -> dict[tuple[str, int], Tally]:
        """Every (stream, position) tally with at least one trial."""
        return {key: t for key, t in sorted(self._tallies.items()) if t.trials}

    def first_token_tallies(self, position: int) -> dict[int, Tally]:
        """Outcomes of rollouts from ``response[:position]``, grouped by their first token."""
        return self._first_tokens.get(position, {})

    def sample(self, position: int, n: int, stream: str) -> None:
        """Draw ``n`` continuations of ``response[:position]`` and file their outcomes.

        :param position: prefix length, ``0 <= position < len(response)``.
        :param n: number of continuations.
        :param stream: which estimate stream the rollouts count for.
        """
        if not 0 <= position < self.length:
            raise ValueError(f"cannot sample from prefix length {position} of a {self.length}-token response")
        prefix = self.response_ids[:position]
        continuations = self._draw(prefix, n, stream, (stream, position))
        rest = self.response_ids[position:]
        paths = self._paths.setdefault((stream, position), Counter())
        for continuation in continuations:
            success = bool(self.oracle(prefix + list(continuation)))
            self.tally(position, stream).add(success)
            if continuation:
                self._first_tokens.setdefault(position, {}).setdefault(continuation[0], Tally()).add(success)
            shared = _common_prefix_length(continuation, rest)
            paths[(shared, success)] += 1
            # Credit the longer prefixes this rollout also happens to be a sample of.
            for k in range(1, min(shared, len(rest) - 1) + 1):
                self.tally(position + k, stream).add(success)

    def sample_alternative(self, position: int, token_id: int, n: int) -> None:
        """Draw ``n`` continuations of ``response[:position] + [token_id]`` for pair selection."""
        prefix = self.response_ids[:position] + [token_id]
        continuations = self._draw(prefix, n, PAIR, (PAIR, position, token_id))
        tally = self._first_tokens.setdefault(position, {}).setdefault(token_id, Tally())
        for continuation in continuations:
            tally.add(bool(self.oracle(prefix + list(continuation))))

    def _draw(self, prefix: list[int], n: int, stream: str, key: tuple) -> list[list[int]]:
        round_index = self._rounds[key]
        self._rounds[key] += 1
        cache_key = (tuple(prefix), key, round_index, n)
        if self.draws is not None and cache_key in self.draws:
            self.reused[stream] += n
            return self.draws[cache_key]
        continuations = self.sampler.sample(self.query_ids, list(prefix), n, derive_seed(self.seed, *key, round_index))
        if len(continuations) != n:
            raise ValueError(f"sampler returned {len(continuations)} continuations, asked for {n}")
        self.rollouts[stream] += n
        if self.draws is not None:
            self.draws[cache_key] = [list(c) for c in continuations]
        return continuations


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def next_batch(trials: int, min_trials: int, cap: int) -> int:
    """Doubling batch size: start at ``min_trials``, then match what is already there, up to ``cap``."""
    return max(0, min(max(min_trials, trials), cap - trials))


def estimate_success(
    ledger: RolloutLedger,
    position: int,
    stream: str,
    accept_range: tuple[float, float],
    min_trials: int,
    max_trials: int,
    reject_z: float | None = None,
) -> PrefixStats:
    """Estimate p(success | response[:position]) until it is clearly inside or outside a range.

    Sampling stops as soon as the Wilson interval lies entirely inside ``accept_range``, or the interval at
    ``reject_z`` (the ledger's z when omitted) entirely outside it, or at ``max_trials``; so easy and hopeless
    queries are dropped after one small batch. Rollouts already in the ledger count.

    :param ledger: the search's rollouts.
    :param position: prefix length.
    :param stream: estimate stream.
    :param accept_range: ``(low, high)`` range, e.g. ``(p_min, p_max)`` for the query filter.
    :param min_trials: first batch size.
    :param max_trials: cap on rollouts for this prefix in this stream.
    :param reject_z: z-score of the interval that decides "outside" (a stricter one guards against dropping
        what is inside).
    :returns: the final estimate.
    """
    low, high = accept_range
    while True:
        stats = ledger.stats(position, stream)
        strict = ledger.stats(position, stream, reject_z)
        decided = stats.trials > 0 and (
            (low <= stats.low and stats.high <= high) or strict.high < low or strict.low > high
        )
        batch = next_batch(stats.trials, min_trials, max_trials)
        if stats.exact or decided or batch == 0:
            return stats
        ledger.sample(position, batch, stream)


@dataclass(frozen=True)
class ChangeEstimate:
    """Estimate of ``p(response[:end]) - p(response[:start])`` with a confidence interval.

    :param diff: point estimate.
    :param low: lower bound.
    :param high: upper bound.
    :param widths: ``(interval width, position to sample to narrow it)`` per uncertain input.
    """

    diff: float
    low: float
    high: float
    widths: tuple[tuple[float, int], ...]


def estimate_change(ledger: RolloutLedger, start: int, end: int, stream: str, z: float) -> ChangeEstimate:
    """Current estimate of the change of p across ``[start, end)`` (stratified when log-probs exist)."""
    b = ledger.stats(end, stream, z)
    b_width = () if b.exact else ((b.high - b.low, end),)
    follow = ledger.follow_probability(start, end)
    if follow is None:
        a = ledger.stats(start, stream, z)
        low, high = _change_interval(a.p, (a.low, a.high), a.trials, b)
        return ChangeEstimate(b.p - a.p, low, high, ((a.high - a.low, start), *b_width))
    off = ledger.off_response_tally(start, end, stream)
    off_low, off_high = wilson_interval(off.successes, off.trials, z)
    low, high = _change_interval(off.p, (off_low, off_high), off.trials, b)
    scale = 1.0 - follow
    return ChangeEstimate(scale * (b.p - off.p), scale * low, scale * high, ((off_high - off_low, start), *b_width))


def _change_interval(p_a: float, interval_a: tuple[float, float], trials_a: int,
                     b: PrefixStats) -> tuple[float, float]:
    """Interval for ``p_b - p_a``: Newcombe's hybrid once both sides have data, else the plain box.

    With an unsampled side (interval (0, 1), point 0.5) the hybrid spans only +-0.71, which the
    stratified estimate then scales by the headroom ``1 - pi``: at headroom 0.25 an unsampled
    confirmation would read as "moves p by less than 0.18" and rule a pivot out without a rollout.
    The box ``[low_b - high_a, high_b - low_a]`` is the honest interval there ([-1, 1] with no data).
    """
    if trials_a == 0 or (b.trials == 0 and not b.exact):
        return b.low - interval_a[1], b.high - interval_a[0]
    return difference_interval(p_a, interval_a, b.p, (b.low, b.high))


@dataclass(frozen=True)
class GapDecision:
    """Outcome of :func:`decide_gap`.

    :param reached: the change in p across the segment is judged to be at least ``p_gap``.
    :param confident: the interval for the change decided it, rather than the sampling cap.
    :param diff: point estimate of p(end) - p(start).
    """

    reached: bool
    confident: bool
    diff: float


def decide_gap(
    ledger: RolloutLedger,
    start: int,
    end: int,
    stream: str,
    p_gap: float,
    min_trials: int,
    max_trials: int,
    margin: float = 0.0,
    z: float | None = None,
) -> GapDecision:
    """Decide whether ``|p(response[:end]) - p(response[:start])| >= p_gap``, sampling only as needed.

    Rollouts go to whichever input of the change estimate has the wider interval until the
    interval of the change lies entirely beyond ``p_gap`` or entirely within it. If the sampling
    caps are hit first, the point estimate decides against ``(1 - margin) * p_gap``: ``margin=0``
    is the report's rule; a positive margin keeps segments that could not be ruled out, for a
    later, stricter test to settle.

    :returns: a :class:`GapDecision`.
    """
    z = ledger.z if z is None else z
    while True:
        change = estimate_change(ledger, start, end, stream, z)
        if change.low >= p_gap or change.high <= -p_gap:
            return GapDecision(True, True, change.diff)
        if -p_gap < change.low and change.high < p_gap:
            return GapDecision(False, True, change.diff)
        open_inputs = [
            (width, position)
            for width, position in change.widths
            if ledger.stats(position, stream).trials < max_trials
        ]
        if not open_inputs:
            return GapDecision(abs(change.diff) >= (1.0 - margin) * p_gap, False, change.diff)
        _, position = max(open_inputs)
        trials = ledger.stats(position, stream).trials
        ledger.sample(position, next_batch(trials, min_trials, max_trials), stream)
