"""Labelling one pair: rejection sampling when the prompt has a reference, otherwise the judge in both orders.

Position bias is the judge's best-known flaw, so every pair is judged twice, once in each order, and is
kept only when both orders name the same winner. Outcomes of a pair:

- ``a`` / ``b``: that response won (both orders agree; or the oracle says it alone is correct);
- ``tie``: both orders say tie;  ``disagree``: the orders name different winners (counted as a tie);
- ``unparseable``: an order gave no verdict even after one retry;
- ``same_correctness``: the oracle finds both correct or both wrong;  ``identical``: same text twice.

Only ``a`` and ``b`` become DPO pairs; every other outcome is dropped and counted in judge_stats.json.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from phi4_recipes.verify import make_oracle

from .client import JudgeClient
from .prompt_sets import JudgePrompt
from .rubrics import Rubric, prompt_text
from .verdicts import parse_pairwise_verdict

RETRY_NUDGE = "Your reply did not end with a verdict. Reply with exactly one of [[A]], [[B]] or [[tie]]."


def verify_responses(prompt: JudgePrompt, texts: list[str], oracle_options: dict[str, Any] | None) -> list[bool]:
    """Rejection sampling: whether each response is correct, by the prompt's verify/ oracle."""
    oracle = make_oracle(prompt.oracle, prompt.reference, **(oracle_options or {}).get(prompt.oracle, {}))
    return [bool(oracle(text)) for text in texts]


def oracle_outcome(correct_a: bool, correct_b: bool) -> str:
    return "same_correctness" if correct_a == correct_b else ("a" if correct_a else "b")


def combine_orders(first: str | None, second: str | None) -> str:
    """Outcome from the verdict with `a` shown first and the verdict with `b` shown first."""
    if first is None or second is None:
        return "unparseable"
    winner_first = {"A": "a", "B": "b", "tie": "tie"}[first]
    winner_second = {"A": "b", "B": "a", "tie": "tie"}[second]
    return winner_first if winner_first == winner_second else "disagree"


class PairJudge:
    """Judges pairs in both orders on a bounded thread pool (the judge client also bounds what is in flight).

    Args:
        client: the judge.
        rubrics: rubric per prompt category ("general", "rai").
        max_concurrency: judge requests in flight at once.
        seed: sent with every judge request.
    """

    def __init__(self, client: JudgeClient, rubrics: dict[str, Rubric], max_concurrency: int, seed: int):
        self.client = client
        self.rubrics = rubrics
        self.seed = seed
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="judge")

    def submit(self, prompt: JudgePrompt, text_a: str, text_b: str) -> tuple[Future, Future]:
        """Both orders of one pair, in flight; each future gives {"verdict", "reply", "retried"}."""
        rubric, question = self.rubrics[prompt.category], prompt_text(prompt.messages)
        return (self._pool.submit(self._judge_once, rubric.messages(question, text_a, text_b)),
                self._pool.submit(self._judge_once, rubric.messages(question, text_b, text_a)))

    def _judge_once(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        reply = self.client.complete(messages, seed=self.seed)
        verdict = parse_pairwise_verdict(reply)
        if verdict is not None:
            return {"verdict": verdict, "reply": reply, "retried": False}
        # One retry, showing the judge its own reply: a greedy judge asked the same question again would
        # most likely give the same verdict-less answer.
        retry = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": RETRY_NUDGE}]
        second = self.client.complete(retry, seed=self.seed + 1)
        return {"verdict": parse_pairwise_verdict(second), "reply": second, "retried": True}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
