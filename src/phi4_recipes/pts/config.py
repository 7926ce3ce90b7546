"""Knobs of the Pivotal Token Search, round-tripping through JSON: :class:`SearchSettings`, set once per run,
and :class:`PTSConfig`, those settings with one search's seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class SearchSettings:
    """The knobs of :func:`phi4_recipes.pts.find_pivotal_tokens`, each documented once in its ``help``: what a
    recipe sets once for every search of a run. The seed is not one of them (see :class:`PTSConfig`).

    Not frozen: ``pts.options.PTSScriptArguments`` extends it (a frozen base would forbid that), so a recipe
    declares these knobs only here. Treat an instance as a value all the same; ``dataclasses.replace``
    gives a changed copy.
    """

    p_gap: float = field(default=0.2, metadata={"help": "A token is pivotal when it moves the success "
                                                        "probability by at least this much."})
    p_min: float = field(default=0.2, metadata={"help": "Queries whose estimated p(empty prefix) is below "
                                                        "this are skipped (too hard)."})
    p_max: float = field(default=0.8, metadata={"help": "Queries whose estimated p(empty prefix) is above "
                                                        "this are skipped (too easy)."})
    min_trials: int = field(default=16, metadata={"help": "Rollouts in the first batch at a prefix never "
                                                          "sampled before."})
    max_trials: int = field(default=64, metadata={"help": "At most this many search rollouts per prefix; at the "
                                                          "cap the point estimate decides (see unresolved_margin), "
                                                          "as the report's algorithm does at its fixed N."})
    filter_max_trials: int = field(
        default=32, metadata={"help": "The question filter is a sequential test: it samples p(empty prefix) in "
                                      "doubling batches until its interval is clearly inside or outside "
                                      "[p_min, p_max], spending up to this many rollouts only on questions near a "
                                      "band edge (clear ones stop after min_trials). Kept small: a question still "
                                      "undecided is searched (keep_undecided), and a search costs less than the "
                                      "hundreds of rollouts that would settle p near an edge (on the tiny SFT "
                                      "models, 256 here cost 0.45x the peer's rollouts per real pivot, 32 0.25x, "
                                      "at the same recall)."})
    keep_undecided: bool = field(
        default=True, metadata={"help": "Search a question whose p interval still straddles a band edge at "
                                        "filter_max_trials: rejecting an in-band question loses all its pivots, "
                                        "keeping an out-of-band one only costs a search that finds real pivots."})
    reject_z: float = field(
        default=2.0, metadata={"help": "z-score of the interval that must lie wholly outside [p_min, p_max] before the "
                                       "filter drops a question. Stricter than confidence_z: dropping an in-band "
                                       "question loses every pivot it holds, keeping an out-of-band one costs a "
                                       "search."})
    confidence_z: float = field(default=1.5, metadata={"help": "z-score of the Wilson / Newcombe intervals that "
                                                               "stop search sampling early."})
    unresolved_margin: float = field(
        default=0.3, metadata={"help": "A segment still undecided at the cap is split when its estimated change is "
                                       "at least (1 - unresolved_margin) * p_gap: splitting a doubtful segment only "
                                       "costs rollouts, pruning it can lose a pivot."})
    confirm: bool = field(default=True, metadata={"help": "Re-test every candidate pivot on fresh rollouts before "
                                                          "accepting it."})
    nominate_margin: float = field(
        default=0.25, metadata={"help": "Like unresolved_margin, for passing a single token on to confirmation."})
    confirm_z: float = field(default=2.0, metadata={"help": "z-score of the confirmation intervals (stricter: "
                                                            "this test accepts pivots)."})
    confirm_max_trials: int = field(
        default=128, metadata={"help": "At most this many confirmation rollouts per prefix; at the cap the point "
                                       "estimate decides against p_gap itself."})
    use_logprobs: bool = field(
        default=True, metadata={"help": "Use the sampler's token log-probs (when it has them) to skip tokens that "
                                        "cannot be pivotal, to split at the cumulative headroom midpoint and to "
                                        "stratify change estimates. Switch off when those log-probs are not of the "
                                        "distribution sample draws from (another temperature or top-p)."})
    make_pairs: bool = field(default=True, metadata={"help": "Pick, for each pivot, the alternative first token "
                                                             "that forms its DPO pair."})
    pair_trials: int = field(default=32, metadata={"help": "The alternative token's estimate is topped up to this "
                                                           "many rollouts."})
    pair_max_alternatives: int = field(default=3, metadata={"help": "Alternatives tried per pivot before giving up "
                                                                    "on a pair."})

    def __post_init__(self) -> None:
        if not 0.0 < self.p_gap <= 1.0:
            raise ValueError(f"p_gap must be in (0, 1], got {self.p_gap}")
        if not 0.0 <= self.p_min <= self.p_max <= 1.0:
            raise ValueError(f"need 0 <= p_min <= p_max <= 1, got {self.p_min}, {self.p_max}")
        if self.min_trials < 1 or self.max_trials < self.min_trials:
            raise ValueError(f"need 1 <= min_trials <= max_trials, got {self.min_trials}, {self.max_trials}")
        if self.filter_max_trials < self.min_trials:
            raise ValueError("filter_max_trials must be at least min_trials")
        if self.confirm_max_trials < self.min_trials:
            raise ValueError("confirm_max_trials must be at least min_trials")
        if self.confidence_z <= 0 or self.confirm_z <= 0 or self.reject_z <= 0:
            raise ValueError("confidence_z, confirm_z and reject_z must be positive")
        if not (0.0 <= self.unresolved_margin < 1.0 and 0.0 <= self.nominate_margin < 1.0):
            raise ValueError("unresolved_margin and nominate_margin must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of :meth:`to_dict`; unknown keys fail loudly so typos in recipes surface."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeyError(f"unknown {cls.__name__} keys: {unknown}")
        return cls(**data)

    def search_settings(self) -> SearchSettings:
        """These knobs alone, as a plain :class:`SearchSettings` (whatever subclass holds them)."""
        return SearchSettings(**{f.name: getattr(self, f.name) for f in fields(SearchSettings)})

    def with_seed(self, seed: int) -> PTSConfig:
        """One search: these settings and the seed every rollout seed of that search derives from."""
        return PTSConfig(**self.search_settings().to_dict(), seed=seed)


@dataclass
class PTSConfig(SearchSettings):
    """Settings of one search: the knobs of :class:`SearchSettings` and the search's seed."""

    seed: int = field(default=0, metadata={"help": "The search seed: every rollout seed derives from it, so the "
                                                   "same inputs and seed give the same result."})


def require_logprobs_of_sampling(temperature: float, top_p: float, use_logprobs: bool) -> None:
    """Refuse log-prob guidance when samples come from another distribution than the log-probs describe.

    The search's log-probs are temperature-1, full-vocabulary ones; at temperature 0.6 or top-p 0.9 a token's
    headroom ``1 - pi(t)`` and the follow probabilities of the stratified estimate would be of the wrong
    distribution, so pruning could drop real pivots and the change estimates would be biased.
    """
    if use_logprobs and (temperature != 1.0 or top_p != 1.0):
        raise ValueError(f"temperature={temperature}, top_p={top_p} with use_logprobs=true: the search's token "
                         "log-probs are at temperature 1 without top-p, so its pruning and estimates would use the "
                         "wrong distribution; set temperature: 1.0 and top_p: 1.0, or use_logprobs: false "
                         "(plain rollouts, valid at any temperature)")
