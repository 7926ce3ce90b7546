"""Which responses are compared, and which compared pairs become DPO pairs.

Three strategies (recipe key `pairing`):

- ``all_pairs`` (default): every pair of responses from two distinct responders. This is what the Phi-4
  report describes for round 2: responses from GPT-4o, GPT-4t and the model being trained, "DPO pairs
  formed from various combinations" of them, each pair labelled positive or negative by the judge. All
  combinations of responders, each labelled pairwise, is that description with nothing added; the other
  two strategies each add an assumption the report does not make (that the policy is always one side;
  that responses are scored and only the extremes kept).
- ``policy_vs_others``: the policy's responses against each other responder's (on-policy pairs only).
- ``best_vs_worst``: every pair of responses is compared; each response scores wins minus losses over its
  kept comparisons (correct = 1 under an oracle), and the top scorer vs the bottom scorer is the one pair,
  kept only when their own comparison agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

PAIRING_STRATEGIES = ("all_pairs", "policy_vs_others", "best_vs_worst")
DECIDED = ("a", "b")  # outcomes that name a winner; every other outcome drops the pair


def candidate_pairs(responder_names: Sequence[str], strategy: str, policy: str | None = None) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, of the responses to compare; response i came from responder_names[i]."""
    pairs = list(combinations(range(len(responder_names)), 2))
    if strategy == "all_pairs":
        return [(i, j) for i, j in pairs if responder_names[i] != responder_names[j]]
    if strategy == "policy_vs_others":
        return [(i, j) for i, j in pairs if (responder_names[i] == policy) != (responder_names[j] == policy)]
    if strategy == "best_vs_worst":
        return pairs
    raise ValueError(f"unknown pairing {strategy!r}; expected one of {PAIRING_STRATEGIES}")


def select_pairs(pairs: Sequence[dict], strategy: str, num_responses: int) -> list[dict]:
    """The (chosen, rejected) response indices that become DPO rows, from compared `pairs` ({a, b, outcome})."""
    decided = [p for p in pairs if p["outcome"] in DECIDED]
    if strategy != "best_vs_worst":
        return [_chosen_rejected(n, p) for n, p in enumerate(pairs) if p["outcome"] in DECIDED]
    if not decided:
        return []
    score = [0] * num_responses
    for p in decided:
        winner, loser = (p["a"], p["b"]) if p["outcome"] == "a" else (p["b"], p["a"])
        score[winner] += 1
        score[loser] -= 1
    involved = sorted({i for p in decided for i in (p["a"], p["b"])})
    best = max(involved, key=lambda i: (score[i], -i))
    worst = min(involved, key=lambda i: (score[i], i))
    for n, p in enumerate(pairs):
        if {p["a"], p["b"]} == {best, worst} and p["outcome"] in DECIDED:
            chosen = _chosen_rejected(n, p)
            return [chosen] if chosen["chosen"] == best else []
    return []


def _chosen_rejected(index: int, pair: dict) -> dict:
    a_wins = pair["outcome"] == "a"
    return {"pair": index, "chosen": pair["a"] if a_wins else pair["b"], "rejected": pair["b"] if a_wins else pair["a"]}
