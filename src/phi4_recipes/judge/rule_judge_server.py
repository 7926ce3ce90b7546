"""A rule-based pairwise judge behind an OpenAI-compatible /v1/chat/completions, on 127.0.0.1.

    python -m phi4_recipes.judge.rule_judge_server --port 0 --url-file /tmp/judge_url   # prints its URL

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

from phi4_recipes.generation.chat_server import ChatServer, ServerError, serve_from_command_line

__all__ = ["RuleJudgeServer", "ServerError", "read_pair", "response_score", "rule_verdict"]

_SECTION = re.compile(r"<\|The Start of Response ([AB])\|>\n(.*?)\n<\|The End of Response \1\|>", re.DOTALL)
_PROMPT = re.compile(r"<\|User Prompt\|>\n(.*?)\n\n<\|The Start of Response A\|>", re.DOTALL)
_REFUSAL = re.compile(r"\b(can(?:no|')t|won't|unable to|sorry|not able to|decline)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")


def read_pair(judge_prompt: str) -> tuple[str, str, str] | None:
    """(user prompt, response A, response B) from a rendered rubric, or None when it is not one."""
    sections, prompt = dict(_SECTION.findall(judge_prompt)), _PROMPT.search(judge_prompt)
    if prompt is None or set(sections) != {"A", "B"}:
        return None
    return prompt.group(1), sections["A"], sections["B"]


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
    body limits, 400 for malformed requests, time-outs) is `generation.chat_server.ChatServer`'s.
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
