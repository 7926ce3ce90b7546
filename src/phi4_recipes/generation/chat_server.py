"""A small, defensive OpenAI-compatible chat endpoint for rule-based stand-ins (judge, synthetic data).

The tiny pipeline and the tests need an endpoint before any real model exists; `judge.rule_judge_server`
and `synth.standin_server` answer by rule through this class. To serve a real checkpoint, use
`vllm serve PATH` or `transformers serve`.

It holds up against a hostile or broken client on its own: the API key is checked before the body is read,
a body over `max_body_bytes` is refused with 413 unread, a missing, negative or short Content-Length gets
400, and every malformed request (not JSON, nested too deeply, a JSON array, bad messages, NaN or a
400-digit temperature, `max_tokens: 0`, a bad `n`) gets 400 naming the field. Every request gets an HTTP
answer: an error inside a reply is a 500, never a dropped connection. `PooledHTTPServer` and
`HardenedRequestHandler` bound what clients can hold: at most `max_workers` threads, `max_pending`
connections waiting for one (then 503), and `request_timeout_s` for a whole request to arrive (then 408),
however slowly its bytes drip in.

Routes: GET /v1/models, POST /v1/chat/completions.
"""

from __future__ import annotations

import argparse
import collections
import hmac
import io
import json
import logging
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

logger = logging.getLogger(__name__)

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


def _error(message: str) -> dict:
    return {"error": {"message": message}}


class PooledHTTPServer(HTTPServer):
    """An ``HTTPServer`` that answers on at most ``max_workers`` threads, started on demand and ended when idle.

    Up to ``max_pending`` further connections wait, unread, for a free thread; past that a connection gets 503
    at once. A worker holds a connection for at most ``request_timeout_s`` while the request arrives (see
    `HardenedRequestHandler`), so a waiting connection is picked up within that time plus one reply.
    """

    request_queue_size = 256  # the listen backlog: socketserver's 5 resets connections when 16 open at once

    def __init__(self, address, handler: type[BaseHTTPRequestHandler], *, read_timeout_s: float = 10.0,
                 request_timeout_s: float = 30.0, max_workers: int = 64, max_pending: int = 256):
        if max_workers < 1 or max_pending < 0 or read_timeout_s <= 0 or request_timeout_s <= 0:
            raise ValueError("max_workers must be >= 1, max_pending >= 0 and both time-outs > 0; got "
                             f"{max_workers}, {max_pending}, {read_timeout_s}, {request_timeout_s}")
        self.read_timeout_s = read_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_workers = max_workers
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._busy = 0  # worker threads alive, each answering one connection after another
        self._pending: collections.deque[tuple[socket.socket, tuple]] = collections.deque()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        with self._lock:
            start = self._busy < self.max_workers
            if start:
                self._busy += 1
            elif len(self._pending) < self.max_pending:
                self._pending.append((request, client_address))
                return
        if not start:
            return self._refuse(request)
        threading.Thread(target=self._work, args=(request, client_address), name="http-worker", daemon=True).start()

    def _work(self, request, client_address) -> None:
        while True:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._lock:
                if not self._pending:
                    self._busy -= 1
                    return
                request, client_address = self._pending.popleft()

    def _refuse(self, request: socket.socket) -> None:
        """503 from the accepting thread, without reading the request: every worker is busy."""
        data = json.dumps(_error(f"all {self.max_workers} workers are busy and {self.max_pending} connections "
                                 "wait; retry shortly")).encode()
        head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(data)}"
                "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
        try:
            request.settimeout(0.5)  # a fresh connection's send buffer is empty: this never really waits
            request.sendall(head + data)
            for _ in range(16):  # closing with unread bytes would reset the connection before the 503 is read
                if not request.recv(65536, socket.MSG_DONTWAIT):
                    break
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        logger.exception("error while serving %s", client_address)

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            waiting, self._pending = list(self._pending), collections.deque()
        for request, _ in waiting:
            self.shutdown_request(request)


class _DeadlineSocketIO(socket.SocketIO):
    """The handler's socket as a raw stream whose every read ends by the handler's whole-request deadline."""

    def __init__(self, handler: HardenedRequestHandler):
        super().__init__(handler.connection, "rb")
        self._handler = handler

    def readinto(self, buffer) -> int | None:
        handler = self._handler
        remaining = handler.deadline - time.monotonic()
        if remaining <= 0:
            handler.request_timed_out = True
            raise TimeoutError(f"the request did not arrive within {handler.server.request_timeout_s} s")
        read_timeout_s = handler.server.read_timeout_s
        self._sock.settimeout(min(remaining, read_timeout_s))
        try:
            return super().readinto(buffer)
        except TimeoutError:
            handler.request_timed_out = remaining <= read_timeout_s  # the deadline, not a stalled read, ended it
            raise


class HardenedRequestHandler(BaseHTTPRequestHandler):
    """A request handler for `PooledHTTPServer` that no client can stall or crash.

    Each read waits at most the server's ``read_timeout_s``; the request line, headers and body together must
    arrive within ``request_timeout_s`` (a client dripping a byte at a time gets 408 and is dropped); an
    exception while answering is logged and answered 500 instead of dropping the connection.
    """

    # The base class answers a request line it cannot take (e.g. "HTTP/2.0": 505) as HTTP/0.9, a bare page with
    # no status line that clients read as a broken connection; a JSON API answers every client in HTTP/1.x.
    default_request_version = "HTTP/1.0"
    deadline = 0.0  # monotonic time by which the current request must have arrived
    request_timed_out = False
    _responded = False

    def setup(self) -> None:
        self.timeout = self.server.read_timeout_s
        super().setup()
        self.rfile.close()  # replaced by a reader that keeps the whole-request deadline
        self.rfile = io.BufferedReader(_DeadlineSocketIO(self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.server.request_timeout_s
        self.request_timed_out = False
        self._responded = False
        # What the base class sets only once a request line parses; an early 408 or 500 still needs them.
        self.command, self.requestline, self.request_version = "", "", ""
        try:
            super().handle_one_request()
        except Exception as err:  # a bug in one answer must not cost the client its response
            logger.exception("answering %r failed", self.requestline)
            self.close_connection = True
            if not self._responded:
                self.send_json(500, _error(f"internal error: {type(err).__name__}"))
            return
        if self.request_timed_out and not self._responded:  # the base class drops a timed-out client silently
            self.close_connection = True
            self.send_json(408, _error(f"the request did not arrive within {self.server.request_timeout_s} s"))

    def send_response_only(self, code, message=None) -> None:
        self._responded = True
        super().send_response_only(code, message)

    def send_json(self, status: int, payload: dict) -> None:
        """Send ``payload`` with ``status``; a client that has gone away is not an error."""
        data = json.dumps(payload).encode()
        try:
            self.connection.settimeout(self.server.read_timeout_s)  # reads near the deadline shortened it
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # BrokenPipeError, ConnectionResetError, TimeoutError: the client went away
            self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - quiet: the caller's log is the run's
        pass


class BackgroundHTTPServer:
    """Start/stop of a `PooledHTTPServer` in a background thread; shared by ChatServer and the tests'
    fault-injecting server, so both get the same worker bound and request deadline. ``handler`` should
    subclass `HardenedRequestHandler` (the deadline, 408 and 500 live there)."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], *, read_timeout_s: float = 10.0,
                 request_timeout_s: float = 30.0, max_workers: int = 64, max_pending: int = 256):
        self._httpd = PooledHTTPServer((host, port), handler, read_timeout_s=read_timeout_s,
                                       request_timeout_s=request_timeout_s, max_workers=max_workers,
                                       max_pending=max_pending)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self):
        # A short poll interval: shutdown() waits for the loop to notice, and tests start hundreds of servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__,
                                        daemon=True)
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
        request_timeout_s: a request (line, headers, body) that has not arrived after this long gets 408.
        max_workers: most requests answered at once; up to ``max_pending`` more wait, the rest get 503.
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
        self.requests: list[dict] = []  # every well-formed chat request answered or refused, in arrival order
        self._lock = threading.Lock()
        super().__init__(host, port, _make_handler(self), read_timeout_s=read_timeout_s,
                         request_timeout_s=request_timeout_s, max_workers=max_workers, max_pending=max_pending)

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


def _make_handler(server: ChatServer):
    class Handler(HardenedRequestHandler):
        def do_GET(self):
            if not server.authorised(self.headers.get("Authorization")):
                return self.send_json(401, _error("missing or wrong API key"))
            if self.path == "/v1/models":
                return self.send_json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            return self.send_json(404, _error(f"no route GET {self.path}"))

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
                return self.send_json(err.status, _error(str(err)))
            except Exception as err:  # whatever else a hostile body provokes is still a bad request
                return self.send_json(400, _error(f"malformed request: {type(err).__name__}: {_shorten(str(err))}"))
            try:
                payload = server.answer(body)
            except ServerError as err:
                return self.send_json(err.status, _error(str(err)))
            return self.send_json(200, payload)  # any other error in answer() is HardenedRequestHandler's 500

        def _read_json(self):
            length = self.headers.get("Content-Length")
            if length is None:
                raise ServerError(411, "Content-Length is required")
            try:
                size = int(length)
            except ValueError:
                raise ServerError(400, f"Content-Length must be an integer, got {_shorten(repr(length))}") from None
            if size < 0:
                raise ServerError(400, f"Content-Length must be >= 0, got {size}")
            if size > server.max_body_bytes:
                raise ServerError(413, f"the body is {size} bytes; this server takes at most {server.max_body_bytes}")
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
