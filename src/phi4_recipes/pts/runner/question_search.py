"""One question, end to end: sample responses, pick which to search, search them, return the shard record.

Choices made here (the report leaves them open):

* The model's trailing stop token (the template's end of turn, ``<|im_end|>`` for Phi-4) is cut from each response before the search. It holds
  no answer text (the oracle skips special tokens anyway), and searching it would only ask whether
  *ending the turn* is pivotal. Every pair prompt is therefore ``query_ids + response_ids[:position]``
  exactly as searched, and the stop token never appears as a chosen or rejected side.
* Only responses the model finished (it produced a stop token) are searched: one cut at ``max_new_tokens``
  has no final answer to judge. A question whose sampled responses are all cut is ``no_response``.
* Of the ``responses_per_question`` sampled responses, the first incorrect and the first correct one
  are searched (``search_all_responses`` searches all). A correct response shows the tokens that
  raise p, an incorrect one those that lower it, so one of each finds more distinct pivots per rollout
  than two of the same kind.
* Every seed derives from the run seed and the question id, never from the question's position, so a
  question gives the same record whichever shard runs it, in whatever order, after however many restarts.
  All responses of one question share one search seed, so they share the p(query) estimate and its
  filter decision; when the first is filtered the others would be too, and are not searched again. The
  later searches read the p(query) rollouts (and any other shared-prefix draw) from a per-question cache
  instead of sampling the identical continuations again.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import PTSConfig, SearchSettings
from ..estimator import DrawCache
from ..protocols import IdsOracle, Sampler
from ..search import find_pivotal_tokens
from ..stats import derive_seed
from .records import QuestionRecord, ResponseRecord

# How a run's manifest names the seeds it used: its `seed`, and per question the one derived below.
QUESTION_SEEDS = "pts.stats.derive_seed(seed, 'pts-question', question_id): each shard record's `seed`"


def question_seed(run_seed: int, question_id: str) -> int:
    """The seed of one question's samples and search, whichever shard runs it and in whatever order."""
    return derive_seed(run_seed, "pts-question", question_id)


def strip_stop(token_ids: Sequence[int], stop_ids: Collection[int]) -> list[int]:
    ids = list(token_ids)
    return ids[:-1] if ids and ids[-1] in stop_ids else ids


def choose_responses(verdicts: Sequence[bool], lengths: Sequence[int], search_all: bool,
                     finished: Sequence[bool]) -> list[int]:
    """Indices of the sampled responses to search, in sample order: non-empty ones the model finished.

    A response cut at ``max_new_tokens`` is not an answer: its oracle verdict judges a truncated text, and the
    model would have gone on writing. Searching it makes its last tokens look pivotal against that verdict
    (SmolLM2-135M, 48-token cap: "The final answer is «9»" at search Delta +0.57, re-estimated +0.03).
    """
    usable = [i for i, n in enumerate(lengths) if n > 0 and finished[i]]
    if search_all:
        return usable
    first_wrong = next((i for i in usable if not verdicts[i]), None)
    first_right = next((i for i in usable if verdicts[i]), None)
    return sorted(i for i in (first_wrong, first_right) if i is not None)


@dataclass(frozen=True)
class SampledResponses:
    """A question's sampled responses (stop token cut), the oracle's verdicts, and which of them to search.

    :param responses: each sampled response without its trailing stop token.
    :param verdicts: the oracle's verdict on each.
    :param finished: whether the model ended it with a stop token (not cut at ``max_new_tokens``).
    :param chosen: indices to search, from :func:`choose_responses`.
    """

    responses: list[list[int]]
    verdicts: list[bool]
    finished: list[bool]
    chosen: list[int]


def sample_responses(query: list[int], sampler: Sampler, oracle: IdsOracle, *, seed: int, count: int,
                     search_all: bool, stop_ids: Collection[int]) -> SampledResponses:
    """Sample ``count`` responses to ``query`` on the question's ``seed`` and choose which to search."""
    sampled = sampler.sample(query, [], count, derive_seed(seed, "responses"))
    responses = [strip_stop(ids, stop_ids) for ids in sampled]
    verdicts = [bool(oracle(ids)) for ids in responses]
    finished = [len(ids) > len(cut) for ids, cut in zip(sampled, responses, strict=True)]
    chosen = choose_responses(verdicts, [len(r) for r in responses], search_all, finished)
    return SampledResponses(responses, verdicts, finished, chosen)


def _search_chosen(query: list[int], sampled: SampledResponses, sampler: Sampler, oracle: IdsOracle,
                   config: PTSConfig) -> list[ResponseRecord]:
    """Search the chosen responses in order; a question the filter drops is not searched again."""
    searched = []
    draws: DrawCache = {}  # the responses share the query and seed, so p(query) rollouts are drawn once
    for index in sampled.chosen:
        result = find_pivotal_tokens(query, sampled.responses[index], sampler, oracle, config, draws=draws,
                                     question_verdicts=sampled.verdicts)
        searched.append(ResponseRecord(index, sampled.finished[index], result))
        if result.status == "filtered":
            break
    return searched


def search_question(
    question_id: str,
    query: list[int],
    sampler: Sampler,
    oracle: IdsOracle,
    *,
    search: SearchSettings,
    run_seed: int,
    responses_per_question: int,
    search_all_responses: bool,
    stop_ids: Collection[int],
    model: str,
    tokenizer: str,
    settings: dict[str, Any],
) -> QuestionRecord:
    """Sample, choose, search; the record of one question for its shard line.

    :param question_id: the question's stable id.
    :param query: chat-template query ids (only the sampler sees them).
    :param sampler: draws continuations of query + prefix.
    :param oracle: judges response ids alone.
    :param search: the run's search settings (no seed: the question's own is derived here, once).
    :param run_seed: the run's seed, the root of the question's seed.
    :param responses_per_question: responses sampled before choosing which to search.
    :param search_all_responses: search every sampled response, not one incorrect and one correct.
    :param stop_ids: end-of-turn ids, cut from the end of each sampled response.
    :param model: recorded as the model that answered.
    :param tokenizer: recorded as the tokenizer of the ids.
    :param settings: the run options that shape the record, kept in it so a resume can check them.
    """
    if isinstance(search, PTSConfig):  # its seed would silently give way to the question's
        raise TypeError("search_question derives each question's seed from run_seed; pass the run's "
                        "SearchSettings (PTSConfig.search_settings()), not a PTSConfig with a seed of its own")
    started = time.perf_counter()
    seed = question_seed(run_seed, question_id)
    sampled = sample_responses(query, sampler, oracle, seed=seed, count=responses_per_question,
                               search_all=search_all_responses, stop_ids=stop_ids)
    config = search.with_seed(seed)

    searched = _search_chosen(query, sampled, sampler, oracle, config)
    if not searched:
        status = "no_response"
    else:
        status = "searched" if any(s.result.status == "searched" for s in searched) else "filtered"
    return QuestionRecord(
        question_id=question_id,
        status=status,
        p_query=searched[0].result.p_query if searched else None,
        sampled_correct=sampled.verdicts,
        responses=searched,
        rollouts=sum(s.result.rollouts for s in searched),
        model=model,
        tokenizer=tokenizer,
        run_seed=run_seed,
        seed=seed,
        settings=settings,
        seconds=round(time.perf_counter() - started, 3),
    )
