"""A rule-based pairwise judge behind an OpenAI-compatible /v1/chat/completions, on 127.0.0.1.

    python -m phi4_recipes.standins.judge_server --port 0 --url-file /tmp/judge_url   # prints its URL

A stand-in for a real LLM judge (GPT-4o in the Phi-4 recipe), for the tiny pipeline, tests and benchmarks
on machines with no judge model: it reads the two responses out of a judge/prompts rubric and answers
deterministically by rule, in the reply format the rubrics ask for ("... [[A]]"). Its verdicts mean little;
what it exercises is everything around the judge (both orders, ties, retries, concurrency, resume).

The rule: on an RAI rubric a response that declines beats one that does not, and two that do not
decline tie; otherwise a response scores
the share of its words that are not repeats plus its overlap with the prompt's words, so repetition loses
and length alone does not win; scores within 0.05 are a tie. It depends only on the texts, never on their
order, so both orders agree except where a tie is called.

`latency_s` delays every answer, as a model's thinking time would, so concurrency shows in throughput.
Subclasses may override `answer` (tests script per-test judges and inject faults that way, raising
`ServerError` for an HTTP error status).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from phi4_recipes.standins.chat_server import ChatServer, ServerError, serve_from_command_line

__all__ = ["RuleJudgeServer", "ServerError", "read_pair", "response_score", "rule_verdict"]

# The rubric's markers; read_pair finds them with str.find, in time linear in the prompt. Regexes with a lazy
# `(.*?)` between markers rescanned the rest of the text from every unclosed opening marker: a 207 KB prompt of
# repeated openings held the GIL for 12 s and stalled every other client.
_PROMPT_OPEN, _PROMPT_CLOSE = "<|User Prompt|>\n", "\n\n<|The Start of Response A|>"
_RESPONSE_OPEN = {side: f"<|The Start of Response {side}|>\n" for side in "AB"}
_RESPONSE_CLOSE = {side: f"\n<|The End of Response {side}|>" for side in "AB"}
_REFUSAL = re.compile(r"\b(can(?:no|')t|won't|unable to|sorry|not able to|decline)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")


def read_pair(judge_prompt: str) -> tuple[str, str, str] | None:
    """(user prompt, response A, response B) from a rendered rubric, or None when it is not one.

    The prompt runs from the first "<|User Prompt|>" to the first opening of Response A after it. Responses
    are read left to right: an opening marker's text runs to the first closing marker of the same side; an
    opening with no closing is skipped; a side read twice keeps its last text.
    """
    start = judge_prompt.find(_PROMPT_OPEN)
    end = judge_prompt.find(_PROMPT_CLOSE, start + len(_PROMPT_OPEN)) if start >= 0 else -1
    if end < 0:
        return None
    responses = _read_responses(judge_prompt)
    if set(responses) != {"A", "B"}:
        return None
    return judge_prompt[start + len(_PROMPT_OPEN):end], responses["A"], responses["B"]


def _read_responses(text: str) -> dict[str, str]:
    # Each side's next opening and closing are remembered and searched again only once the scan has passed
    # them, so no stretch of text is searched twice for the same marker.
    responses: dict[str, str] = {}
    next_open = {side: text.find(marker) for side, marker in _RESPONSE_OPEN.items()}
    next_close = dict.fromkeys("AB", 0)
    position = 0
    while True:
        for side, found in next_open.items():
            if 0 <= found < position:
                next_open[side] = text.find(_RESPONSE_OPEN[side], position)
        opened = [(found, side) for side, found in next_open.items() if found >= 0]
        if not opened:
            return responses
        found, side = min(opened)
        body = found + len(_RESPONSE_OPEN[side])
        if 0 <= next_close[side] < body:
            next_close[side] = text.find(_RESPONSE_CLOSE[side], body)
        if next_close[side] < 0:  # never closed: neither is any later opening of this side
            next_open[side] = -1
            position = found + 1
            continue
        responses[side] = text[body:next_close[side]]
        position = next_close[side] + len(_RESPONSE_CLOSE[side])


def response_score(prompt: str, response: str) -> float:
    words = _WORD.findall(response.lower())
    if not words:
        return 0.0
    distinct = len(set(words)) / len(words)
    overlap = len(set(words) & set(_WORD.findall(prompt.lower())))
    return distinct + min(overlap, 5) / 5


def rule_verdict(messages: list[dict]) -> str:
    """The judge's reply to a rubric request (a last user turn asking for a verdict gets the verdict alone)."""
    text = messages[0]["content"] if messages else ""
    pair = read_pair(text)
    if pair is None:
        return "I can only judge pairwise rubric prompts. [[tie]]"
    prompt, a, b = pair
    if "responsible AI" in text:
        refuses_a, refuses_b = bool(_REFUSAL.search(a)), bool(_REFUSAL.search(b))
        if refuses_a != refuses_b:
            return f"Only one response declines the risky request. [[{'A' if refuses_a else 'B'}]]"
        if not refuses_a:
            # Two compliant answers to a risky request carry no safety preference; picking one by wording would
            # teach DPO to prefer one harmful (or, from a tiny model, nonsensical) answer over another.
            return "Neither response declines the risky request. [[tie]]"
    score_a, score_b = response_score(prompt, a), response_score(prompt, b)
    if abs(score_a - score_b) < 0.05:
        return f"The responses are about as good (scores {score_a:.2f} vs {score_b:.2f}). [[tie]]"
    return f"Scores {score_a:.2f} vs {score_b:.2f}. [[{'A' if score_a > score_b else 'B'}]]"


class RuleJudgeServer(ChatServer):
    """Serves `rule` (messages -> reply text) on HOST:PORT in a background thread; port 0 picks a free port.

    Many requests are answered at once (one thread each), as a hosted judge would; the HTTP side (key check,
    body limits, 400 for malformed requests, time-outs) is `standins.chat_server.ChatServer`'s.
    """

    def __init__(self, rule: Callable[[list[dict]], str] = rule_verdict, *, model_name: str = "rule-judge",
                 host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0):
        self.rule = rule
        super().__init__(lambda body, index, n: self.rule(body["messages"]), model_name=model_name, host=host,
                         port=port, latency_s=latency_s)


def main(argv: list[str] | None = None) -> None:
    serve_from_command_line(lambda args: RuleJudgeServer(host=args.host, port=args.port, latency_s=args.latency_s),
                            __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()
