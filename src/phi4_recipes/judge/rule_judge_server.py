"""A rule-based pairwise judge behind an OpenAI-compatible /v1/chat/completions, on 127.0.0.1.

    python -m phi4_recipes.judge.rule_judge_server --port 0 --url-file /tmp/judge_url   # prints its URL

A stand-in for a real LLM judge (GPT-4o in the Phi-4 recipe), for the tiny pipeline, tests and benchmarks
on machines with no judge model: it reads the two responses out of a judge/prompts rubric and answers
deterministically by rule, in the reply format the rubrics ask for ("... [[A]]"). Its verdicts mean little;
what it exercises is everything around the judge (both orders, ties, retries, concurrency, resume).

The rule: on an RAI rubric a response that declines beats one that does not; otherwise a response scores
the share of its words that are not repeats plus its overlap with the prompt's words, so repetition loses
and length alone does not win; scores within 0.05 are a tie. It depends only on the texts, never on their
order, so both orders agree except where a tie is called.

`latency_s` delays every answer, as a model's thinking time would, so concurrency shows in throughput.
Subclasses may override `answer` (tests script per-test judges and inject faults that way).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_SECTION = re.compile(r"<\|The Start of Response ([AB])\|>\n(.*?)\n<\|The End of Response \1\|>", re.DOTALL)
_PROMPT = re.compile(r"<\|User Prompt\|>\n(.*?)\n\n<\|The Start of Response A\|>", re.DOTALL)
_REFUSAL = re.compile(r"\b(can(?:no|')t|won't|unable to|sorry|not able to|decline)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")


class ServerError(Exception):
    """Raised by `answer` to send an HTTP error status instead of a reply."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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
    score_a, score_b = response_score(prompt, a), response_score(prompt, b)
    if abs(score_a - score_b) < 0.05:
        return f"The responses are about as good (scores {score_a:.2f} vs {score_b:.2f}). [[tie]]"
    return f"Scores {score_a:.2f} vs {score_b:.2f}. [[{'A' if score_a > score_b else 'B'}]]"


class RuleJudgeServer:
    """Serves `rule` (messages -> reply text) on HOST:PORT in a background thread; port 0 picks a free port.

    Many requests are answered at once (one thread each), as a hosted judge would.
    """

    def __init__(self, rule: Callable[[list[dict]], str] = rule_verdict, *, model_name: str = "rule-judge",
                 host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0):
        self.rule = rule
        self.model_name = model_name
        self.latency_s = latency_s
        self.requests = []  # every chat request body answered or refused, in arrival order
        self._lock = threading.Lock()
        self._httpd = _ThreadingServer((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return len(self.requests)

    def answer(self, body: dict) -> dict:
        """The chat-completion answer to one request body (raise ServerError for an HTTP error)."""
        with self._lock:
            self.requests.append(body)
        if self.latency_s:
            time.sleep(self.latency_s)
        reply = self.rule(body.get("messages") or [])
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def start(self) -> RuleJudgeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rule-judge", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a client opens 16 at once.
    request_queue_size = 256


def _make_handler(server: RuleJudgeServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - quiet: the pipeline's log is the judge run's
            pass

        def do_GET(self):
            if self.path == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            return self._send(404, {"error": {"message": f"no route GET {self.path}"}})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route POST {self.path}"}})
            try:
                return self._send(200, server.answer(json.loads(body or b"{}")))
            except ServerError as err:
                return self._send(err.status, {"error": {"message": str(err)}})
            except json.JSONDecodeError as err:
                return self._send(400, {"error": {"message": f"body is not JSON: {err}"}})

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--url-file", default=None, help="write the base URL here once listening")
    args = parser.parse_args(argv)
    server = RuleJudgeServer(host=args.host, port=args.port, latency_s=args.latency_s)
    if args.url_file:
        tmp = Path(args.url_file + ".tmp")
        tmp.write_text(server.base_url + "\n")
        tmp.replace(args.url_file)
    print(f"listening on {server.base_url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
