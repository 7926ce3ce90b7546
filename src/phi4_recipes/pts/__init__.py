"""Pivotal Token Search (Phi-4 report, section 4.3), independent of any model.

    from phi4_recipes.pts import PTSConfig, find_pivotal_tokens
    result = find_pivotal_tokens(query_ids, response_ids, sampler, oracle, PTSConfig(p_gap=0.2, seed=0))
    result.pivots, result.pairs, result.p_query, result.rollouts

``sampler`` follows :class:`Sampler` (``sample`` and, ideally, ``token_logprobs``); ``oracle`` is an
:data:`IdsOracle` that judges the whole response and never sees the query. Results round-trip through
JSON with ``PTSResult.to_dict()`` / ``PTSResult.from_dict()``.

The modules here are the algorithm alone (standard library only). Around it, and never imported by it:
``pts.runner`` runs it over a dataset for ``run_pts.py`` (questions, shards, records, export, plots), and
``pts.reference`` holds the report's baseline search and the synthetic tasks that tests and benchmarks
score searches on.
"""

from .config import PTSConfig, SearchSettings
from .estimator import RolloutLedger, decide_gap, estimate_change, estimate_success
from .pairs import select_pair
from .protocols import IdsOracle, Sampler, token_logprobs_of
from .result import Pivot, PivotPair, PrefixEstimate, PTSResult
from .search import find_pivotal_tokens, split_point, subdivide

__all__ = [
    "IdsOracle",
    "PTSConfig",
    "PTSResult",
    "Pivot",
    "PivotPair",
    "PrefixEstimate",
    "RolloutLedger",
    "Sampler",
    "SearchSettings",
    "decide_gap",
    "estimate_change",
    "estimate_success",
    "find_pivotal_tokens",
    "select_pair",
    "split_point",
    "subdivide",
    "token_logprobs_of",
]
