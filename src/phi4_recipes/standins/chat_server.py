"""A small, defensive OpenAI-compatible chat endpoint for rule-based stand-ins (judge, synthetic data).

The tiny pipeline and the tests need an endpoint before any real model exists; `standins.judge_server`
and `standins.synth_server` answer by rule through this class. To serve a real checkpoint, use
`vllm serve PATH` or `transformers serve`.

It holds up against a hostile or broken client on its own: the API key is checked before the body is read,
a body over `max_body_bytes` is refused with 413 unread, a missing, negative or short Content-Length gets
400, and every malformed request (not JSON, nested too deeply, a JSON array, bad messages, NaN or a
400-digit temperature, `max_tokens: 0`, a bad `n`) gets 400 naming the field. Every request gets an HTTP
answer: an error inside a reply is a 500, never a dropped connection. `http_server.PooledHTTPServer` and
`HardenedRequestHandler` bound what clients can hold: one reader thread collects every request, and only a
complete one takes one of at most `max_workers` threads, so slow clients cannot keep a valid request
waiting; at most `max_workers + max_pending` connections are held (then 503), and a whole request has
`request_timeout_s` to arrive (then 408), however slowly its bytes drip in. The server keeps a count of the
requests it answered, never their bodies.

Routes: GET /v1/models, POST /v1/chat/completions.
"""

from __future__ import annotations

import argparse
import hmac
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# The HTTP side lives in http_server; its classes are imported from here too (the tests' OpenAI server does).
from .http_server import (
    BackgroundHTTPServer,
    HardenedRequestHandler,
    PooledHTTPServer,
    announced_length,
    error_body,
)

__all__ = ["BackgroundHTTPServer", "ChatServer", "HardenedRequestHandler", "PooledHTTPServer", "Reply", "ServerError",
           "serve_from_command_line", "validate_chat_request"]

# reply(request body, choice index, number of choices) -> the assistant's text
Reply = Callable[[dict, int, int], str]


class ServerError(Exception):
    """Raised while answering to send an HTTP error status instead of a reply."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")  # json.loads would otherwise accept NaN and Infinity


def _finite_non_negative(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and value >= 0
    except OverflowError:  # an int of hundreds of digits has no float value
        return False


def validate_chat_request(body, max_n: int) -> None:
    """Raise ServerError(400) naming the first malformed field of a chat-completions body."""
    if not isinstance(body, dict):
        raise ServerError(400, f"the body must be a JSON object, got {type(body).__name__}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ServerError(400, "'messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise ServerError(400, f"messages[{index}] must be {{role: str, content: str}}")
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and not _finite_non_negative(value):
            raise ServerError(400, f"'{key}' must be a finite number >= 0, got {_shorten(repr(value))}")
    for key, high in (("max_tokens", None), ("n", max_n)):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1
                                  or (high is not None and value > high)):
            bound = f"between 1 and {high}" if high else ">= 1"
            raise ServerError(400, f"'{key}' must be an integer {bound}, got {_shorten(repr(value))}")


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ChatServer(BackgroundHTTPServer):
    """Serves ``reply`` as chat completions on HOST:PORT in background threads; port 0 picks a free port.

    Args:
        reply: text of choice ``index`` of ``n`` for a request body.
        model_name: the id /v1/models reports and answers carry.
        api_key: when set, requests must send ``Authorization: Bearer <key>``.
        latency_s: delay before each answer (a model's thinking time; shows concurrency in throughput).
        max_body_bytes: larger requests get 413 without being read.
        read_timeout_s: a client that stops sending is dropped after this long.
        request_timeout_s: a request (line, headers, body) that has not arrived this long after connecting gets 408.
        max_workers: most requests answered at once; up to ``max_pending`` more connections are held while their
            request arrives or waits for a worker, the rest get 503.
        max_n: most choices per request.
    """

    def __init__(self, reply: Reply, *, model_name: str, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None, latency_s: float = 0.0, max_body_bytes: int = 1 << 20,
                 read_timeout_s: float = 10.0, request_timeout_s: float = 30.0, max_workers: int = 64,
                 max_pending: int = 256, max_n: int = 16):
        self.reply = reply
        self.model_name = model_name
        self.api_key = api_key
        self.latency_s = latency_s
        self.max_body_bytes = max_body_bytes
        self.max_n = max_n
        # A count, not the bodies: a stand-in serving a long run would otherwise grow by every request it answers.
        self._requests_seen = 0
        self._lock = threading.Lock()
        super().__init__(host, port, _make_handler(self), read_timeout_s=read_timeout_s,
                         request_timeout_s=request_timeout_s, max_workers=max_workers, max_pending=max_pending)

    @property
    def requests_seen(self) -> int:
        """Well-formed chat requests that reached `answer` (answered or refused there)."""
        with self._lock:
            return self._requests_seen

    def note_request(self, body: dict) -> None:
        """Count one well-formed request; `answer` calls it first. A subclass that answers some requests itself
        calls it too, and may keep what it needs of ``body`` (the server keeps nothing of it)."""
        with self._lock:
            self._requests_seen += 1

    def answer(self, body: dict) -> dict:
        """The chat-completion answer to one validated body (subclasses may raise ServerError)."""
        self.note_request(body)
        if self.latency_s:
            time.sleep(self.latency_s)
        n = body.get("n") or 1
        choices = [{"index": i, "message": {"role": "assistant", "content": self.reply(body, i, n)},
                    "finish_reason": "stop", "logprobs": None} for i in range(n)]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def authorised(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.api_key}".encode())


def _declared_size(length: str | None, max_body_bytes: int) -> int:
    """The body size a request's Content-Length announces, or the ServerError that refuses it unread."""
    if length is None:
        raise ServerError(411, "Content-Length is required")
    try:
        size = int(length)
    except ValueError:
        raise ServerError(400, f"Content-Length must be an integer, got {_shorten(repr(length))}") from None
    if size < 0:
        raise ServerError(400, f"Content-Length must be >= 0, got {size}")
    if size > max_body_bytes:
        raise ServerError(413, f"the body is {size} bytes; this server takes at most {max_body_bytes}")
    return size


def _make_handler(server: ChatServer):
    class Handler(HardenedRequestHandler):
        @classmethod
        def body_to_read(cls, command, path, headers) -> int:
            # Only a body do_POST will read is collected: the key and the size are checked before any of it is
            # read (401 and 413 go out with the body unread).
            size = announced_length(headers)
            if (command != "POST" or path != "/v1/chat/completions" or size is None or size > server.max_body_bytes
                    or not server.authorised(headers.get("Authorization"))):
                return 0
            return size

        def do_GET(self):
            if not server.authorised(self.headers.get("Authorization")):
                return self.send_json(401, error_body("missing or wrong API key"))
            if self.path == "/v1/models":
                return self.send_json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            return self.send_json(404, error_body(f"no route GET {self.path}"))

        def do_POST(self):
            self.close_connection = True  # an error may leave unread bytes; never reuse this connection
            try:
                if not server.authorised(self.headers.get("Authorization")):
                    raise ServerError(401, "missing or wrong API key")
                if self.path != "/v1/chat/completions":
                    raise ServerError(404, f"no route POST {self.path} (chat completions only)")
                body = self._read_json()
                validate_chat_request(body, server.max_n)
            except ServerError as err:
                return self.send_json(err.status, error_body(str(err)))
            except Exception as err:  # whatever else a hostile body provokes is still a bad request
                return self.send_json(400, error_body(f"malformed request: {type(err).__name__}: {_shorten(str(err))}"))
            try:
                payload = server.answer(body)
            except ServerError as err:
                return self.send_json(err.status, error_body(str(err)))
            return self.send_json(200, payload)  # any other error in answer() is HardenedRequestHandler's 500

        def _read_json(self):
            size = _declared_size(self.headers.get("Content-Length"), server.max_body_bytes)
            try:
                data = self.rfile.read(size)
            except TimeoutError:
                if self.request_timed_out:
                    raise ServerError(408, f"the request did not arrive within {self.server.request_timeout_s} s") from None
                raise ServerError(400, "the body stopped before Content-Length bytes arrived") from None
            if len(data) < size:
                raise ServerError(400, f"the body has {len(data)} of its {size} announced bytes")
            try:
                return json.loads(data, parse_constant=_reject_constant)
            except RecursionError:
                raise ServerError(400, "the body is nested too deeply to be a chat request") from None
            except (ValueError, UnicodeDecodeError) as err:
                raise ServerError(400, f"the body is not valid JSON: {_shorten(str(err))}") from None

    return Handler


def serve_from_command_line(build: Callable[[argparse.Namespace], ChatServer], description: str,
                            argv: list[str] | None = None, add_arguments: Callable | None = None) -> None:
    """`--host/--port/--latency-s/--url-file` for a stand-in's ``python -m`` entry point; serves until killed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--url-file", default=None, help="write the base URL here once listening")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    server = build(args)
    if args.url_file:
        staging = Path(args.url_file + ".tmp")
        staging.write_text(server.base_url + "\n")
        staging.replace(args.url_file)  # a reader polling for the file never sees half a URL
    print(f"listening on {server.base_url}", flush=True)
    server.serve_forever()
