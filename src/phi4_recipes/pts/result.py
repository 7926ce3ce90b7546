"""What a search returns: JSON-serialisable records of every estimate, pivot and pair."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .config import PTSConfig


@dataclass(frozen=True)
class PrefixEstimate:
    """Rollout counts behind p(success | query + response[:position]).

    :param position: prefix length (0 is the empty prefix).
    :param successes: successful search rollouts (own draws plus credited longer matches).
    :param trials: search rollouts.
    :param confirm_successes: successful confirmation rollouts (fresh, drawn after selection).
    :param confirm_trials: confirmation rollouts.
    """

    position: int
    successes: int
    trials: int
    confirm_successes: int = 0
    confirm_trials: int = 0


@dataclass(frozen=True)
class Pivot:
    """A token whose choice moves the success probability by at least ``p_gap``.

    ``p_before``/``p_after`` come from the confirmation rollouts (unbiased by the selection that
    made this token a candidate) or from the search rollouts when confirmation is off;
    ``p_before`` is ``p_after`` minus the (stratified, when log-probs exist) change estimate.
    A count of 0 trials with ``p_after`` in {0, 1} means the oracle's verdict on the full response.

    :param position: index of the token in ``response_ids``.
    :param token_id: ``response_ids[position]``.
    :param p_before: p(success | query + response[:position]).
    :param p_after: p(success | query + response[:position + 1]).
    """

    position: int
    token_id: int
    p_before: float
    p_after: float
    successes_before: int
    trials_before: int
    successes_after: int
    trials_after: int

    @property
    def delta(self) -> float:
        return self.p_after - self.p_before


@dataclass(frozen=True)
class PivotPair:
    """A single-token DPO pair: prompt = query + ``prefix_ids``, chosen/rejected = one token each.

    One side is the pivot token itself; the other is an alternative first token observed in
    rollouts from the same prefix, whose own p was estimated from the rollouts that began with it
    (topped up by sampling from ``prefix_ids + [token]``).

    :param position: the pivot's index in ``response_ids`` (``len(prefix_ids)``).
    :param prefix_ids: response tokens before the pivot.
    :param chosen_token_id: the token that raises p.
    :param rejected_token_id: the token that lowers p.
    :param p_chosen: p(success | query + prefix + chosen).
    :param p_rejected: p(success | query + prefix + rejected).
    :param p_before: p(success | query + prefix).
    :param chosen_is_pivot: whether the chosen side is the response's own token.
    """

    position: int
    prefix_ids: list[int]
    chosen_token_id: int
    rejected_token_id: int
    p_chosen: float
    p_rejected: float
    chosen_successes: int
    chosen_trials: int
    rejected_successes: int
    rejected_trials: int
    p_before: float
    chosen_is_pivot: bool


@dataclass
class PTSResult:
    """Everything one search found and paid for.

    :param query_ids: the query, as given.
    :param response_ids: the searched response, as given.
    :param config: the settings used (its ``seed`` is the search seed).
    :param status: ``"searched"``, or ``"filtered"`` when p_query fell outside [p_min, p_max].
    :param p_query: estimated p(success | query) (empty prefix).
    :param response_correct: the oracle's verdict on the full response.
    :param pivots: accepted pivots, by position.
    :param pairs: one pair per pivot for which a good alternative token was found.
    :param estimates: counts for every prefix that was estimated, by position.
    :param rollouts: total continuations sampled (search + confirmation + pairs).
    :param rollouts_by_stream: the same, split by purpose.
    :param reused_rollouts: continuations read from an earlier search of the same question (not sampled again).
    :param used_logprobs: whether the sampler's token log-probs guided the search.
    """

    query_ids: list[int]
    response_ids: list[int]
    config: PTSConfig
    status: str
    p_query: float
    response_correct: bool
    pivots: list[Pivot] = field(default_factory=list)
    pairs: list[PivotPair] = field(default_factory=list)
    estimates: list[PrefixEstimate] = field(default_factory=list)
    rollouts: int = 0
    rollouts_by_stream: dict[str, int] = field(default_factory=dict)
    used_logprobs: bool = False
    reused_rollouts: int = 0

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def pivot_positions(self) -> list[int]:
        return [p.position for p in self.pivots]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists, dicts, numbers, strings, bools)."""
        data = asdict(self)
        data["config"] = self.config.to_dict()
        data["seed"] = self.seed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PTSResult:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data.pop("seed", None)
        return cls(
            query_ids=list(data.pop("query_ids")),
            response_ids=list(data.pop("response_ids")),
            config=PTSConfig.from_dict(data.pop("config")),
            pivots=[Pivot(**p) for p in data.pop("pivots")],
            pairs=[PivotPair(**p) for p in data.pop("pairs")],
            estimates=[PrefixEstimate(**e) for e in data.pop("estimates")],
            **data,
        )
