"""The HTTP side of the stand-ins' endpoints: a pooled server whose reader thread collects requests, and a
handler that no client can stall or crash (see `standins.chat_server` for what the endpoint answers).

`PooledHTTPServer` reads every connection's request on one selector and hands only complete requests to at
most ``max_workers`` threads, so clients that send slowly or not at all hold no thread and cannot keep a
valid request waiting. It holds at most ``max_workers + max_pending`` connections (then 503 at once), and a
request must arrive within ``request_timeout_s`` of connecting (then 408), however slowly its bytes drip in.
`HardenedRequestHandler` answers an exception with 500, never a dropped connection; `BackgroundHTTPServer`
runs the two in a background thread.
"""

from __future__ import annotations

import collections
import http.client
import io
import json
import logging
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

logger = logging.getLogger(__name__)


def error_body(message: str) -> dict:
    """The JSON an error status carries, as OpenAI-compatible APIs send it."""
    return {"error": {"message": message}}


# A request head (request line and headers) over this many bytes gets 431 without more of it being read. It is
# above the base class's 65536-byte line limit, so an over-long request line or header still gets 414 or 431.
MAX_HEAD_BYTES = 1 << 17
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a head, whether its lines end in CRLF or bare LF


def announced_length(headers) -> int | None:
    """The Content-Length a head announces, or None when it is missing, not an integer or negative."""
    try:
        size = int(headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None


@dataclass(eq=False)
class _Arrival:
    """One connection's request as the reader collects it, until it is complete or reading it ends."""

    sock: socket.socket
    address: tuple
    deadline: float  # monotonic time by which the whole request must have arrived
    last_read: float  # monotonic time bytes last came; a stall counts from here
    data: bytearray = field(default_factory=bytearray)
    size: int | None = None  # head plus the body bytes to collect, once the head is complete
    scanned: int = 0  # bytes already searched for the end of the head
    ending: str | None = None  # why reading stopped short: "eof", "stalled", "deadline" or "overflow"


class PooledHTTPServer(HTTPServer):
    """An ``HTTPServer`` that reads every request on one thread and answers complete ones on a pool.

    A reader thread collects each connection's request line, headers and body (the part the handler's
    `HardenedRequestHandler.body_to_read` asks for) on one selector; only then does one of at most
    ``max_workers`` threads (started on demand, ended when idle) answer it. A client that sends slowly or not
    at all thus holds no thread: it costs the reader nothing until its bytes come, and it ends at
    ``request_timeout_s`` after it connected (408), or after ``read_timeout_s`` without a byte. At most
    ``max_workers + max_pending`` connections are held at once (arriving, waiting for a worker or answered);
    past that a connection gets 503 at once. One request per connection (HTTP/1.0): a worker never reads the
    next one.
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
        self._held = 0  # connections accepted and not yet closed
        self._busy = 0  # worker threads alive, each answering one complete request after another
        self._incoming: list[_Arrival] = []  # accepted, not yet on the reader's selector
        self._ready: collections.deque[_Arrival] = collections.deque()  # complete, waiting for a worker
        self._reader: threading.Thread | None = None
        self._closing = False
        self._answering = threading.local()  # the arrival a worker thread is answering, for its handler
        super().__init__(address, handler)
        self._wake_reader, self._wake_writer = socket.socketpair()  # new connections and closing wake the reader
        self._wake_writer.setblocking(False)

    @property
    def connections_held(self) -> int:
        """Connections accepted and not yet closed: arriving, waiting for a worker or being answered."""
        with self._lock:
            return self._held

    def current_arrival(self) -> _Arrival | None:
        """The request the calling worker thread is answering (None outside a worker)."""
        return getattr(self._answering, "arrival", None)

    def process_request(self, request, client_address) -> None:
        now = time.monotonic()
        with self._lock:
            refuse = self._closing or self._held >= self.max_workers + self.max_pending
            if not refuse:
                self._held += 1
                self._incoming.append(_Arrival(request, client_address, now + self.request_timeout_s, now))
                if self._reader is None:
                    self._reader = threading.Thread(target=self._read_requests, name="http-reader", daemon=True)
                    self._reader.start()
        if refuse:
            return self._refuse(request)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except OSError:  # BlockingIOError: wake-ups already pending, one is enough; or the server closed
            pass

    def _read_requests(self) -> None:
        """The reader thread: every arriving request on one selector, each handed on once complete or ended."""
        arriving: dict[socket.socket, _Arrival] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._closing:
                now = time.monotonic()
                due = min((min(a.deadline, a.last_read + self.read_timeout_s) for a in arriving.values()),
                          default=now + 1.0)
                for key, _ in selector.select(max(0.0, due - now)):
                    if key.fileobj is self._wake_reader:
                        self._take_incoming(selector, arriving)
                    elif self._receive(key.data):
                        self._hand_over(selector, arriving, key.data)
                now = time.monotonic()
                for arrival in list(arriving.values()):
                    if now >= arrival.deadline:
                        arrival.ending = "deadline"
                    elif now >= arrival.last_read + self.read_timeout_s:
                        arrival.ending = "stalled"
                    else:
                        continue
                    self._hand_over(selector, arriving, arrival)
        for arrival in arriving.values():
            self._release(arrival)

    def _take_incoming(self, selector, arriving: dict) -> None:
        try:
            while self._wake_reader.recv(4096, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            incoming, self._incoming = self._incoming, []
        for arrival in incoming:
            try:
                arrival.sock.setblocking(False)
                selector.register(arrival.sock, selectors.EVENT_READ, arrival)
            except (OSError, ValueError):  # gone before it was registered
                self._release(arrival)
                continue
            arriving[arrival.sock] = arrival

    def _receive(self, arrival: _Arrival) -> bool:
        """Take what the client sent; whether reading this request is over (complete, ended or too long)."""
        try:
            chunk = arrival.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:  # reset by the client: nothing more will come
            chunk = b""
        if not chunk:
            arrival.ending = "eof"
            return True
        arrival.data += chunk
        arrival.last_read = time.monotonic()
        if arrival.size is None:
            blank = _BLANK_LINE.search(arrival.data, max(0, arrival.scanned - 2))
            arrival.scanned = len(arrival.data)  # a head dripped a byte at a time is searched once, not n times
            if blank is None:
                if len(arrival.data) > MAX_HEAD_BYTES:
                    arrival.ending = "overflow"
                    return True
                return False
            arrival.size = blank.end() + self._body_to_read(bytes(arrival.data[:blank.end()]))
        return len(arrival.data) >= arrival.size

    def _body_to_read(self, head: bytes) -> int:
        """How much body to collect before a worker answers: the handler's choice, 0 for a head it cannot parse
        (the handler then answers it with the base class's error)."""
        request_line, _, fields = head.partition(b"\n")
        words = request_line.decode("iso-8859-1").split()
        if len(words) != 3 or not hasattr(self.RequestHandlerClass, "body_to_read"):
            return 0
        try:
            headers = http.client.parse_headers(io.BytesIO(fields))
            return max(0, int(self.RequestHandlerClass.body_to_read(words[0], words[1], headers)))
        except Exception:  # over 100 headers, a bad line, or a failing check: the worker answers it
            return 0

    def _hand_over(self, selector, arriving: dict, arrival: _Arrival) -> None:
        """Off the selector and on to a worker; a client that left without a byte is only closed."""
        selector.unregister(arrival.sock)
        del arriving[arrival.sock]
        if arrival.ending == "eof" and not arrival.data:
            return self._release(arrival)
        with self._lock:
            start = self._busy < self.max_workers
            if start:
                self._busy += 1
            else:
                self._ready.append(arrival)
        if start:
            threading.Thread(target=self._work, args=(arrival,), name="http-worker", daemon=True).start()

    def _work(self, arrival: _Arrival) -> None:
        while True:
            self._answering.arrival = arrival
            try:
                arrival.sock.setblocking(True)
                self.finish_request(arrival.sock, arrival.address)
            except Exception:
                self.handle_error(arrival.sock, arrival.address)
            finally:
                self._answering.arrival = None
                self._release(arrival)
            with self._lock:
                if not self._ready:
                    self._busy -= 1
                    return
                arrival = self._ready.popleft()

    def _release(self, arrival: _Arrival) -> None:
        self.shutdown_request(arrival.sock)
        with self._lock:
            self._held -= 1

    def _refuse(self, request: socket.socket) -> None:
        """503 from the accepting thread, without reading the request: the server holds all it may."""
        limit = self.max_workers + self.max_pending
        data = json.dumps(error_body(f"the server is busy: it holds its limit of {limit} connections; retry shortly"))
        data = data.encode()
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
            self._closing = True
            reader = self._reader
        self._wake()
        if reader is not None and reader is not threading.current_thread():
            reader.join()  # it closes the connections still arriving
        with self._lock:
            waiting = self._incoming + list(self._ready)
            self._incoming, self._ready = [], collections.deque()
        for arrival in waiting:
            self._release(arrival)
        self._wake_reader.close()
        self._wake_writer.close()


class _ArrivedIO(socket.SocketIO):
    """The handler's socket as a raw stream: first the bytes the reader collected, then (for a body the reader
    left to the handler) the socket itself, every read ending by the whole-request deadline."""

    def __init__(self, handler: HardenedRequestHandler, arrival: _Arrival | None):
        super().__init__(handler.connection, "rb")
        self._handler = handler
        self._collected = memoryview(arrival.data if arrival else b"")
        self._ending = arrival.ending if arrival else None

    def readinto(self, buffer) -> int | None:
        if self._collected:
            size = min(len(buffer), len(self._collected))
            buffer[:size] = self._collected[:size]
            self._collected = self._collected[size:]
            return size
        handler = self._handler
        read_timeout_s = handler.server.read_timeout_s
        if self._ending == "eof":
            return 0
        if self._ending == "stalled":
            raise TimeoutError(f"no byte arrived for {read_timeout_s} s")
        remaining = handler.deadline - time.monotonic()
        if self._ending == "deadline" or remaining <= 0:
            handler.request_timed_out = True
            raise TimeoutError(f"the request did not arrive within {handler.server.request_timeout_s} s")
        self._sock.settimeout(min(remaining, read_timeout_s))
        try:
            return super().readinto(buffer)
        except TimeoutError:
            handler.request_timed_out = remaining <= read_timeout_s  # the deadline, not a stalled read, ended it
            raise


class HardenedRequestHandler(BaseHTTPRequestHandler):
    """A request handler for `PooledHTTPServer` that no client can stall or crash.

    It answers the request the server's reader collected (`body_to_read` says how much body to collect
    first); a read past that waits at most the server's ``read_timeout_s``, and the request line, headers and
    body together must arrive within ``request_timeout_s`` of connecting (a client dripping a byte at a time
    gets 408); an exception while answering is logged and answered 500 instead of dropping the connection.
    """

    # The base class answers a request line it cannot take (e.g. "HTTP/2.0": 505) as HTTP/0.9, a bare page with
    # no status line that clients read as a broken connection; a JSON API answers every client in HTTP/1.x.
    default_request_version = "HTTP/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: the reader collected just this one
    max_read_ahead_bytes = 1 << 20  # the most body `body_to_read` collects before a worker answers
    deadline = 0.0  # monotonic time by which the current request must have arrived
    request_timed_out = False
    _responded = False

    @classmethod
    def body_to_read(cls, command: str, path: str, headers) -> int:
        """Body bytes the server collects before a worker answers this head: its Content-Length, up to
        ``max_read_ahead_bytes``. Override to collect none (return 0) for a request answered without reading
        its body, e.g. one refused for its key or size; a worker reads whatever more the answer asks for."""
        size = announced_length(headers)
        return size if size is not None and size <= cls.max_read_ahead_bytes else 0

    def setup(self) -> None:
        self.timeout = self.server.read_timeout_s
        super().setup()
        current = getattr(self.server, "current_arrival", None)
        self.arrival = current() if current else None
        self.rfile.close()  # replaced by a reader of what arrived that keeps the whole-request deadline
        self.rfile = io.BufferedReader(_ArrivedIO(self, self.arrival))

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def handle_one_request(self) -> None:
        self.deadline = self.arrival.deadline if self.arrival else time.monotonic() + self.server.request_timeout_s
        self.request_timed_out = False
        self._responded = False
        # What the base class sets only once a request line parses; an early 408, 431 or 500 still needs them.
        self.command, self.requestline, self.request_version = "", "", ""
        if self.arrival is not None and self.arrival.ending == "overflow":
            return self.send_json(431, error_body(f"the request line and headers are over {MAX_HEAD_BYTES} bytes"))
        try:
            super().handle_one_request()
        except Exception as err:  # a bug in one answer must not cost the client its response
            logger.exception("answering %r failed", self.requestline)
            self.close_connection = True
            if not self._responded:
                self.send_json(500, error_body(f"internal error: {type(err).__name__}"))
            return
        if self.request_timed_out and not self._responded:  # the base class drops a timed-out client silently
            self.close_connection = True
            self.send_json(408, error_body(f"the request did not arrive within {self.server.request_timeout_s} s"))

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
