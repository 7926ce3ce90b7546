"""A small, defensive OpenAI-compatible chat endpoint for rule-based stand-ins (judge, synthetic data).

The tiny pipeline and the tests need an endpoint before any real model exists; `judge.rule_judge_server`
and `synth.standin_server` answer by rule through this class. To serve a real checkpoint, use
`vllm serve PATH` or `transformers serve`.

It holds up against a hostile or broken client on its own: the API key is checked before the body is read,
a body over `max_body_bytes` is refused with 413 unread, a missing, negative or short Content-Length gets
400 (socket reads time out, so no handler thread waits forever), and every malformed request (not JSON, a
JSON array, bad messages, NaN temperature, `max_tokens: 0`, a bad `n`) gets 400 naming the field.

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# reply(request body, choice index, number of choices) -> the assistant's text
Reply = Callable[[dict, int, int], str]


class ServerError(Exception):
    """Raised while answering to send an HTTP error status instead of a reply."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")  # json.loads would otherwise accept NaN and Infinity


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
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value) or value < 0):
            raise ServerError(400, f"'{key}' must be a finite number >= 0, got {value!r}")
    for key, high in (("max_tokens", None), ("n", max_n)):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1
                                  or (high is not None and value > high)):
            bound = f"between 1 and {high}" if high else ">= 1"
            raise ServerError(400, f"'{key}' must be an integer {bound}, got {value!r}")


class BackgroundHTTPServer:
    """Start/stop of an ``http.server`` in a background thread; subclasses set ``self._httpd`` (and
    ``self._thread = None``) in ``__init__``. Shared by ChatServer and the tests' fault-injecting server."""

    _httpd: ThreadingHTTPServer
    _thread: threading.Thread | None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

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


class ChatServer(BackgroundHTTPServer):
    """Serves ``reply`` as chat completions on HOST:PORT in background threads; port 0 picks a free port.

    Args:
        reply: text of choice ``index`` of ``n`` for a request body.
        model_name: the id /v1/models reports and answers carry.
        api_key: when set, requests must send ``Authorization: Bearer <key>``.
        latency_s: delay before each answer (a model's thinking time; shows concurrency in throughput).
        max_body_bytes: larger requests get 413 without being read.
        read_timeout_s: a client that stops sending is dropped after this long.
        max_n: most choices per request.
    """

    def __init__(self, reply: Reply, *, model_name: str, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None, latency_s: float = 0.0, max_body_bytes: int = 1 << 20,
                 read_timeout_s: float = 10.0, max_n: int = 16):
        self.reply = reply
        self.model_name = model_name
        self.api_key = api_key
        self.latency_s = latency_s
        self.max_body_bytes = max_body_bytes
        self.max_n = max_n
        self.requests: list[dict] = []  # every well-formed chat request answered or refused, in arrival order
        self._lock = threading.Lock()
        self._httpd = _ThreadingServer((host, port), _make_handler(self, read_timeout_s))
        self._thread: threading.Thread | None = None

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return len(self.requests)

    def answer(self, body: dict) -> dict:
        """The chat-completion answer to one validated body (subclasses may raise ServerError)."""
        with self._lock:
            self.requests.append(body)
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


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a client opens 16 at once.
    request_queue_size = 256


def _make_handler(server: ChatServer, read_timeout_s: float):
    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout_s  # applied to the connection: a stalled client cannot hold a thread forever

        def log_message(self, format, *args):  # noqa: A002 - quiet: the caller's log is the run's
            pass

        def do_GET(self):
            if not server.authorised(self.headers.get("Authorization")):
                return self._send(401, {"error": {"message": "missing or wrong API key"}})
            if self.path == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            return self._send(404, {"error": {"message": f"no route GET {self.path}"}})

        def do_POST(self):
            self.close_connection = True  # an error may leave unread bytes; never reuse this connection
            try:
                if not server.authorised(self.headers.get("Authorization")):
                    raise ServerError(401, "missing or wrong API key")
                if self.path != "/v1/chat/completions":
                    raise ServerError(404, f"no route POST {self.path} (chat completions only)")
                body = self._read_json()
                validate_chat_request(body, server.max_n)
                return self._send(200, server.answer(body))
            except ServerError as err:
                return self._send(err.status, {"error": {"message": str(err)}})

        def _read_json(self):
            length = self.headers.get("Content-Length")
            if length is None:
                raise ServerError(411, "Content-Length is required")
            try:
                size = int(length)
            except ValueError:
                raise ServerError(400, f"Content-Length must be an integer, got {length!r}") from None
            if size < 0:
                raise ServerError(400, f"Content-Length must be >= 0, got {size}")
            if size > server.max_body_bytes:
                raise ServerError(413, f"the body is {size} bytes; this server takes at most {server.max_body_bytes}")
            try:
                data = self.rfile.read(size)
            except TimeoutError:
                raise ServerError(400, "the body stopped before Content-Length bytes arrived") from None
            if len(data) < size:
                raise ServerError(400, f"the body has {len(data)} of its {size} announced bytes")
            try:
                return json.loads(data, parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as err:
                raise ServerError(400, f"the body is not valid JSON: {err}") from None

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass

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
