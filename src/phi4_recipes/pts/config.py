"""Knobs of the Pivotal Token Search, in one dataclass that round-trips through JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PTSConfig:
    """Settings of :func:`phi4_recipes.pts.find_pivotal_tokens`.

    :param p_gap: a token is pivotal when it moves the success probability by at least this much.
    :param p_min: queries whose estimated p(empty prefix) is below this are skipped (too hard).
    :param p_max: queries whose estimated p(empty prefix) is above this are skipped (too easy).
    :param seed: every rollout seed is derived from it; same inputs and seed give the same result.
    :param min_trials: rollouts in the first batch at a prefix never sampled before.
    :param max_trials: at most this many search rollouts per prefix; at the cap the point estimate
        decides (see ``unresolved_margin``), as the report's algorithm does at its fixed N.
    :param confidence_z: z-score of the Wilson / Newcombe intervals that stop search sampling early.
    :param unresolved_margin: a segment still undecided at the cap is split when its estimated change
        is at least ``(1 - unresolved_margin) * p_gap``: splitting a doubtful segment only costs
        rollouts, pruning it can lose a pivot.
    :param confirm: re-test every candidate pivot on fresh rollouts before accepting it.
    :param nominate_margin: like ``unresolved_margin``, for passing a single token on to confirmation.
    :param confirm_z: z-score of the confirmation intervals (stricter: this test accepts pivots).
    :param confirm_max_trials: at most this many confirmation rollouts per prefix; at the cap the
        point estimate decides against ``p_gap`` itself.
    :param use_logprobs: use the sampler's ``token_logprobs`` (when it has them) to skip tokens that
        cannot be pivotal, to split at the cumulative-headroom midpoint and to stratify change
        estimates. Switch off when those log-probs are not of the distribution ``sample`` draws
        from (e.g. a different temperature or top-p).
    :param make_pairs: pick, for each pivot, the alternative first token that forms its DPO pair.
    :param pair_trials: the alternative token's estimate is topped up to this many rollouts.
    :param pair_max_alternatives: alternatives tried per pivot before giving up on a pair.
    """

    p_gap: float = 0.2
    p_min: float = 0.2
    p_max: float = 0.8
    seed: int = 0
    min_trials: int = 16
    max_trials: int = 64
    confidence_z: float = 1.5
    unresolved_margin: float = 0.3
    confirm: bool = True
    nominate_margin: float = 0.25
    confirm_z: float = 2.0
    confirm_max_trials: int = 128
    use_logprobs: bool = True
    make_pairs: bool = True
    pair_trials: int = 32
    pair_max_alternatives: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.p_gap <= 1.0:
            raise ValueError(f"p_gap must be in (0, 1], got {self.p_gap}")
        if not 0.0 <= self.p_min <= self.p_max <= 1.0:
            raise ValueError(f"need 0 <= p_min <= p_max <= 1, got {self.p_min}, {self.p_max}")
        if self.min_trials < 1 or self.max_trials < self.min_trials:
            raise ValueError(f"need 1 <= min_trials <= max_trials, got {self.min_trials}, {self.max_trials}")
        if self.confirm_max_trials < self.min_trials:
            raise ValueError("confirm_max_trials must be at least min_trials")
        if self.confidence_z <= 0 or self.confirm_z <= 0:
            raise ValueError("confidence_z and confirm_z must be positive")
        if not (0.0 <= self.unresolved_margin < 1.0 and 0.0 <= self.nominate_margin < 1.0):
            raise ValueError("unresolved_margin and nominate_margin must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PTSConfig:
        """Inverse of :meth:`to_dict`; unknown keys fail loudly so typos in recipes surface."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeyError(f"unknown PTSConfig keys: {unknown}")
        return cls(**data)
