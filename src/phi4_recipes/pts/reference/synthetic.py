"""Synthetic answer processes whose success probability is known exactly for every prefix.

A :class:`TokenProcess` is a finite-horizon Markov chain over a small vocabulary: a hidden state
(a "level" of how well the solution is going), a time- and state-dependent token distribution,
and a deterministic state update per token. The last token is the answer, right or wrong, with a
probability that depends on the level. Backward induction gives the exact
p(correct | prefix) for every prefix, so a search's pivots can be scored against the truth.

Used by the tests, ``bench/pts_efficiency.py`` and the tiny docs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

FILLER_TOKENS = (0, 1, 2, 3)
#: How filler mass is split: one dominant filler, like the usual near-certain LM token, plus rarer
#: ones that are unlikely (large headroom) yet change nothing, so log-prob pruning is not trivial.
FILLER_WEIGHTS = (0.88, 0.07, 0.03, 0.02)
UP, DOWN, ANSWER_RIGHT, ANSWER_WRONG = 4, 5, 6, 7
VOCAB_SIZE = 8


@dataclass
class TokenProcess:
    """A finite-horizon token process with an absorbing correct/incorrect outcome.

    :param policy: ``(horizon, states, vocab)`` array, ``policy[t, s]`` = distribution of token t in state s.
    :param transition: ``(horizon, states, vocab)`` int array, the state after emitting a token.
    :param success: ``(states,)`` bool array, whether ending in a state is a correct answer.
    :param start_state: the state of the empty prefix.
    """

    policy: np.ndarray
    transition: np.ndarray
    success: np.ndarray
    start_state: int

    def __post_init__(self) -> None:
        self.policy = np.asarray(self.policy, dtype=np.float64)
        self.transition = np.asarray(self.transition, dtype=np.int64)
        self.success = np.asarray(self.success, dtype=bool)
        if self.policy.shape != self.transition.shape or self.policy.ndim != 3:
            raise ValueError("policy and transition must both be (horizon, states, vocab)")
        if not np.allclose(self.policy.sum(-1), 1.0):
            raise ValueError("every policy row must sum to 1")
        cdf = np.cumsum(self.policy, axis=-1)
        # Dividing by the last entry makes it exactly 1.0, so u in [0, 1) never picks a zero-probability tail token.
        self._cdf = cdf / cdf[..., -1:]
        values = np.empty((self.horizon + 1, self.policy.shape[1]))
        values[-1] = self.success
        for t in range(self.horizon - 1, -1, -1):
            values[t] = (self.policy[t] * values[t + 1][self.transition[t]]).sum(-1)
        self.values = values

    @property
    def horizon(self) -> int:
        """Number of tokens in every complete response."""
        return self.policy.shape[0]

    def state_after(self, tokens: Sequence[int]) -> int:
        """Hidden state after emitting ``tokens`` from the start."""
        state = self.start_state
        for t, token in enumerate(tokens):
            state = int(self.transition[t, state, token])
        return state

    def success_probability(self, prefix: Sequence[int]) -> float:
        """Exact p(correct | prefix)."""
        return float(self.values[len(prefix), self.state_after(prefix)])

    def prefix_probabilities(self, response: Sequence[int]) -> np.ndarray:
        """Exact p(correct | response[:k]) for k = 0 .. len(response)."""
        state, out = self.start_state, [self.values[0, self.start_state]]
        for t, token in enumerate(response):
            state = int(self.transition[t, state, token])
            out.append(self.values[t + 1, state])
        return np.array(out)

    def token_logprobs(self, response: Sequence[int]) -> list[float]:
        """log pi(t_i | t_<i) for every token of ``response``."""
        state, out = self.start_state, []
        for t, token in enumerate(response):
            out.append(float(np.log(self.policy[t, state, token])))
            state = int(self.transition[t, state, token])
        return out

    def is_correct(self, response: Sequence[int]) -> bool:
        """Whether a complete response ends in a success state."""
        if len(response) != self.horizon:
            raise ValueError(f"a complete response has {self.horizon} tokens, got {len(response)}")
        return bool(self.success[self.state_after(response)])

    def rollout(self, prefix: Sequence[int], n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` continuations of ``prefix`` to the horizon, as an ``(n, horizon - len(prefix))`` array."""
        start = len(prefix)
        states = np.full(n, self.state_after(prefix), dtype=np.int64)
        out = np.empty((n, self.horizon - start), dtype=np.int64)
        for t in range(start, self.horizon):
            tokens = (rng.random(n)[:, None] >= self._cdf[t, states]).sum(-1)
            out[:, t - start] = tokens
            states = self.transition[t, states, tokens]
        return out

    def sample_response(self, rng: np.random.Generator) -> list[int]:
        """One complete response drawn from the process, as a model's answer would be."""
        return self.rollout([], 1, rng)[0].tolist()


def true_pivots(process: TokenProcess, response: Sequence[int], p_gap: float) -> list[int]:
    """The ground truth a search is scored against.

    Token ``i`` of ``response`` is a true pivot iff
    ``|p_true(response[:i + 1]) - p_true(response[:i])| >= p_gap`` with exact probabilities.

    :returns: sorted positions.
    """
    probabilities = process.prefix_probabilities(response)
    deltas = np.abs(np.diff(probabilities))
    return [int(i) for i in np.flatnonzero(deltas >= p_gap - 1e-12)]


class ProcessSampler:
    """A :class:`~phi4_recipes.pts.protocols.Sampler` that draws from a :class:`TokenProcess`.

    The query is ignored: the process already is the model's behaviour on one query.
    ``rollouts`` counts every continuation returned.
    """

    def __init__(self, process: TokenProcess) -> None:
        self.process = process
        self.rollouts = 0

    def sample(self, query_ids: Sequence[int], prefix_ids: Sequence[int], n: int, seed: int) -> list[list[int]]:
        self.rollouts += n
        return self.process.rollout(prefix_ids, n, np.random.default_rng(seed)).tolist()


class LogprobProcessSampler(ProcessSampler):
    """:class:`ProcessSampler` that also reports token log-probs, as real backends do."""

    def token_logprobs(self, query_ids: Sequence[int], response_ids: Sequence[int]) -> list[float]:
        return self.process.token_logprobs(response_ids)


class ProcessOracle:
    """An :data:`~phi4_recipes.pts.protocols.IdsOracle` for a :class:`TokenProcess`; sees only the response."""

    def __init__(self, process: TokenProcess) -> None:
        self.process = process

    def __call__(self, response_ids: Sequence[int]) -> bool:
        return self.process.is_correct(response_ids)


def level_process(
    horizon: int,
    levels: int,
    start: int,
    p_up: np.ndarray,
    p_down: np.ndarray,
    p_right: Sequence[float],
) -> TokenProcess:
    """A process on ``levels`` hidden levels that moves up/down by one and answers at the end.

    :param horizon: tokens per response; the last one is the answer.
    :param levels: number of levels (states ``0 .. levels - 1``); two answered states follow them.
    :param start: starting level.
    :param p_up: ``(horizon - 1, levels)`` probability of an UP token at each step and level.
    :param p_down: ``(horizon - 1, levels)`` probability of a DOWN token.
    :param p_right: ``(levels,)`` probability that the final answer is right from each level.
    :returns: the :class:`TokenProcess`.
    """
    right_state, wrong_state = levels, levels + 1
    states = levels + 2
    policy = np.zeros((horizon, states, VOCAB_SIZE))
    transition = np.zeros((horizon, states, VOCAB_SIZE), dtype=np.int64)
    transition[:] = np.arange(states)[None, :, None]
    level_ids = np.arange(levels)
    for t in range(horizon - 1):
        filler = 1.0 - p_up[t] - p_down[t]
        for token, weight in zip(FILLER_TOKENS, FILLER_WEIGHTS):
            policy[t, :levels, token] = filler * weight
        policy[t, :levels, UP] = p_up[t]
        policy[t, :levels, DOWN] = p_down[t]
        transition[t, :levels, UP] = np.minimum(level_ids + 1, levels - 1)
        transition[t, :levels, DOWN] = np.maximum(level_ids - 1, 0)
    policy[-1, :levels, ANSWER_RIGHT] = p_right
    policy[-1, :levels, ANSWER_WRONG] = 1.0 - np.asarray(p_right)
    transition[-1, :levels, ANSWER_RIGHT] = right_state
    transition[-1, :levels, ANSWER_WRONG] = wrong_state
    # Answered states are never reached before the last step; give them a valid row anyway.
    policy[:, levels:, FILLER_TOKENS[0]] = 1.0
    success = np.zeros(states, dtype=bool)
    success[right_state] = True
    return TokenProcess(policy, transition, success, start)


def _forks(rng: np.random.Generator, horizon: int, count: int, lo: float, hi: float) -> np.ndarray:
    return np.sort(rng.choice(np.arange(int(horizon * lo), int(horizon * hi)), size=count, replace=False))


def sharp_pivot(rng: np.random.Generator, horizon: int) -> TokenProcess:
    """One decisive fork (right method vs wrong method) at a random step; lost/secured are absorbing."""
    fork = _forks(rng, horizon, 1, 0.2, 0.8)[0]
    q = rng.uniform(0.35, 0.65)
    p_up, p_down = np.zeros((horizon - 1, 3)), np.zeros((horizon - 1, 3))
    p_up[:, 1] = p_down[:, 1] = 0.003  # rare early resolutions keep the pivot's place uncertain
    p_up[fork, 1], p_down[fork, 1] = q, 1.0 - q
    return level_process(horizon, 3, 1, p_up, p_down, [0.03, 0.5, 0.97])


def _checkpoints(
    rng: np.random.Generator, horizon: int, levels: int, count: int, p_slip: tuple[float, float],
    p_recover: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Up/down tables with ``count`` checkpoints where a slip (down one level) or a recovery (up one)
    may happen. Slip and recovery chances stay at 0.15 or below, so the token that avoids them moves
    p by less than that and the truth keeps a clear margin around the usual p_gap of 0.2."""
    p_up, p_down = np.zeros((horizon - 1, levels)), np.zeros((horizon - 1, levels))
    for step in _forks(rng, horizon, count, 0.05, 0.95):
        p_down[step, 1:] = rng.uniform(*p_slip)
        p_up[step, :-1] = rng.uniform(*p_recover) if p_recover[1] > 0 else 0.0
    return p_up, p_down


def several_pivots(rng: np.random.Generator, horizon: int) -> TokenProcess:
    """Slips that only go down (good -> shaky -> lost), so p falls monotonically in steps."""
    p_up, p_down = _checkpoints(rng, horizon, 3, count=8, p_slip=(0.05, 0.12), p_recover=(0.0, 0.0))
    return level_process(horizon, 3, 2, p_up, p_down, [0.03, 0.5, 0.97])


def slow_drift(rng: np.random.Generator, horizon: int) -> TokenProcess:
    """A random walk that shifts p by ~0.04 per move; only the final answer can be pivotal."""
    levels, middle = 41, 20
    start = middle + int(rng.integers(-4, 5))
    p_up = np.full((horizon - 1, levels), 0.25)
    p_right = np.clip(0.5 + 0.04 * (np.arange(levels) - middle), 0.05, 0.95)
    return level_process(horizon, levels, start, p_up, p_up.copy(), p_right)


def non_monotone(rng: np.random.Generator, horizon: int) -> TokenProcess:
    """Slips and recoveries between on-track and derailed: p falls and climbs back, so a segment's
    end-points can agree while it hides two pivots (the case the report's stop rule cannot see)."""
    p_up, p_down = _checkpoints(rng, horizon, 2, count=8, p_slip=(0.05, 0.12), p_recover=(0.05, 0.15))
    return level_process(horizon, 2, 1, p_up, p_down, [0.04, 0.96])


def _at_least_two_pivots(process: TokenProcess, response: Sequence[int]) -> bool:
    return len(true_pivots(process, response, 0.2)) >= 2


def _falls_then_climbs(process: TokenProcess, response: Sequence[int]) -> bool:
    deltas = np.diff(process.prefix_probabilities(response))
    signs = np.sign(deltas[np.abs(deltas) >= 0.2])
    return bool(np.any((signs[:-1] < 0) & (signs[1:] > 0)))


def _any_response(process: TokenProcess, response: Sequence[int]) -> bool:
    return True


@dataclass(frozen=True)
class Shape:
    """A family of processes, and which of their responses make a task of this shape."""

    build: Callable[[np.random.Generator, int], TokenProcess]
    accepts: Callable[[TokenProcess, Sequence[int]], bool] = _any_response


#: Shape name -> how to build its processes and pick its responses.
SHAPES: dict[str, Shape] = {
    "sharp_pivot": Shape(sharp_pivot),
    "several_pivots": Shape(several_pivots, _at_least_two_pivots),
    "slow_drift": Shape(slow_drift),
    "non_monotone": Shape(non_monotone, _falls_then_climbs),
}


@dataclass
class SyntheticTask:
    """One query of a synthetic environment: its process and a response drawn from it."""

    shape: str
    seed: int
    query_ids: list[int]
    response_ids: list[int]
    process: TokenProcess

    def sampler(self, logprobs: bool = True) -> ProcessSampler:
        """A fresh sampler; ``logprobs=False`` gives one without ``token_logprobs``."""
        return LogprobProcessSampler(self.process) if logprobs else ProcessSampler(self.process)

    def oracle(self) -> ProcessOracle:
        return ProcessOracle(self.process)

    def true_pivots(self, p_gap: float) -> list[int]:
        return true_pivots(self.process, self.response_ids, p_gap)

    def prefix_probabilities(self) -> np.ndarray:
        return self.process.prefix_probabilities(self.response_ids)


def make_task(
    shape: str, seed: int, horizon: int = 64, p_query_range: tuple[float, float] = (0.3, 0.7)
) -> SyntheticTask:
    """Build a process of the given shape whose exact p(empty prefix) is in ``p_query_range`` and
    draw a response from it that fits the shape; everything depends only on ``(shape, seed, horizon)``.

    :param shape: a key of :data:`SHAPES`.
    :param seed: task seed.
    :param horizon: tokens per response.
    :param p_query_range: accepted range of the exact query success probability.
    """
    family = SHAPES[shape]
    rng = np.random.default_rng([seed, list(SHAPES).index(shape)])
    for _ in range(1000):
        process = family.build(rng, horizon)
        if not p_query_range[0] <= process.values[0, process.start_state] <= p_query_range[1]:
            continue
        for _ in range(200):
            response = process.sample_response(rng)
            if family.accepts(process, response):
                query_ids = [1000 + list(SHAPES).index(shape), seed]
                return SyntheticTask(shape, seed, query_ids, response, process)
    raise RuntimeError(f"no {shape} task with p_query in {p_query_range} after 1000 processes")
