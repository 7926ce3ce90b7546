"""The two things a Pivotal Token Search needs from the outside world: a sampler and an oracle.

Both work on token ids only. The core never decodes or re-encodes text, so the ids that are
searched, estimated and exported as pairs are exactly the ids the model produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

#: Judges a whole response (response prefix + continuation) as correct or not.
#: It receives only response token ids, never the query: an oracle that can read the question
#: would mark answers "correct" merely because the answer text appears in the prompt.
IdsOracle = Callable[[Sequence[int]], bool]


@runtime_checkable
class Sampler(Protocol):
    """Draws continuations of a response prefix.

    ``sample(query_ids, prefix_ids, n, seed)`` returns ``n`` continuations (lists of token ids) of
    ``query_ids + prefix_ids``, each running to the end of the answer (EOS included if the backend
    emits one). During the search ``prefix_ids`` is a prefix of the searched response; when a pair's
    alternative token is estimated it is ``response_ids[:i] + [alternative_token]``. The same
    ``seed`` with the same arguments must give the same continuations.

    A sampler may also provide ``token_logprobs(query_ids, response_ids) -> list[float]``: one
    ``log p(t_i | query, t_<i)`` per response token, under the same distribution ``sample`` draws
    from. Every real backend should provide it (one forward pass); the search then places splits
    where the probability mass is and skips tokens that cannot be pivotal (see ``search.py``).
    It is optional, so it is not part of this Protocol's required members; use
    :func:`token_logprobs_of` to look it up.
    """

    def sample(
        self, query_ids: Sequence[int], prefix_ids: Sequence[int], n: int, seed: int
    ) -> list[list[int]]: ...


def token_logprobs_of(sampler: object) -> Callable[[Sequence[int], Sequence[int]], list[float]] | None:
    """Return the sampler's ``token_logprobs`` method, or ``None`` when it has none.

    :param sampler: any object with a ``sample`` method.
    :returns: a callable ``(query_ids, response_ids) -> list[float]`` or ``None``.
    """
    method = getattr(sampler, "token_logprobs", None)
    return method if callable(method) else None
