"""No client can crash, stall or exhaust the stand-ins' HTTP endpoint (issue 27, section 5).

Every request goes to a real server on 127.0.0.1 (standins.chat_server, and the judge and synth stand-ins
built on it); each test is bounded in requests and seconds.
"""

import http.client
import json
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from phi4_recipes.standins.chat_server import ChatServer
from phi4_recipes.standins.synth_server import StandinServer

LIMIT = 1 << 20  # ChatServer's default max_body_bytes: the largest body a client may send


def echo(body: dict, index: int, n: int) -> str:
    return body["messages"][-1]["content"][:40]


def _ask(content: str, **fields) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": content}], **fields}).encode()


def _address(server) -> tuple[str, int]:
    return server._httpd.server_address[:2]


def _request(address, method: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, dict]:
    host, port = address
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def _post(address, body: bytes, timeout: float = 10.0) -> tuple[int, dict]:
    return _request(address, "POST", "/v1/chat/completions", body, timeout)


def _raw(server, data: bytes) -> bytes:
    with socket.create_connection(_address(server), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _wait_for(condition, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.01)


@pytest.fixture
def server():
    with ChatServer(echo, model_name="echo") as running:
        yield running


@pytest.mark.parametrize("body, field", [
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1' + b"0" * 400 + b"}", "'temperature'"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "top_p": 1' + b"0" * 400 + b"}", "'top_p'"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "nested"),
    (b"[" * 200_000, "nested"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1' + b"0" * 5_000 + b"}", "not valid JSON"),
])
def test_numbers_past_float_and_int_limits_and_deep_nesting_get_400(server, body, field):
    status, payload = _post(_address(server), body)
    assert status == 400 and field in payload["error"]["message"]
    assert _request(_address(server), "GET", "/v1/models")[0] == 200


def test_a_failing_reply_is_answered_500_and_the_server_keeps_serving():
    def broken(body, index, n):
        raise KeyError("no such rule")

    with ChatServer(broken, model_name="broken") as running:
        for _ in range(3):
            status, payload = _post(_address(running), _ask("hi"))
            assert status == 500 and "KeyError" in payload["error"]["message"]
        assert _request(_address(running), "GET", "/v1/models")[0] == 200


def test_the_synth_standin_declines_a_word_problem_with_a_5000_digit_number():
    prompt = f"Task: answer_question\n\nProblem:\nTom has 1{'7' * 5_000} apples and buys 3 more. How many now?"
    with StandinServer() as standin:
        status, payload = _post(_address(standin), _ask(prompt))
    assert status == 200 and payload["choices"][0]["message"]["content"] == "I cannot tell."


def _filled(head: str, fragment: str) -> bytes:
    """A chat body of at most LIMIT bytes: ``head`` then ``fragment`` repeated to fill it."""
    room = LIMIT - len(_ask(head))
    body = _ask(head + fragment * (room // (len(json.dumps(fragment)) - 2)))
    assert LIMIT - 64 < len(body) <= LIMIT
    return body


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """The judge and synth stand-ins as users start them, each in its own process: a rule that held the GIL
    for minutes would otherwise starve this test's own client of its time-outs."""
    folder = tmp_path_factory.mktemp("standins")
    processes, urls = {}, {}
    for name, module in (("judge", "phi4_recipes.standins.judge_server"),
                         ("synth", "phi4_recipes.standins.synth_server")):
        url_file = folder / f"{name}.url"
        processes[name] = subprocess.Popen([sys.executable, "-m", module, "--port", "0", "--url-file", str(url_file)],
                                           stdout=subprocess.DEVNULL)
        urls[name] = url_file
    try:
        for name, url_file in urls.items():
            _wait_for(url_file.exists, seconds=60.0)
            host, port = urlsplit(url_file.read_text().strip()).netloc.split(":")
            urls[name] = (host, int(port))
        yield urls
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


@pytest.mark.parametrize("standin, body", [
    ("judge", _filled("<|User Prompt|>\n" * 30_000, "<|The Start of Response A|>\n")),
    ("synth", _filled("Task: code_to_instruction\n\n", "def f(")),
    ("synth", _filled("Task: code_to_instruction\n\n", "def f():\n\n")),
    ("synth", _filled("Task: instruction_to_code\n\nInstruction:\n", "`f(")),
    ("synth", _filled("Task: revise\n\nDraft:\n", "1")),
], ids=["judge-rubric-markers", "synth-def", "synth-def-no-return", "synth-instruction", "synth-digits"])
def test_a_1_mib_hostile_prompt_is_answered_in_a_second_and_stalls_no_other_client(standins, standin, body):
    address = standins[standin]
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        answered = pool.submit(_post, address, body, 5.0)
        time.sleep(0.15)  # the body is sent and its rule is running
        asked = time.monotonic()
        assert _request(address, "GET", "/v1/models", timeout=5.0)[0] == 200
        assert time.monotonic() - asked < 1.0
        assert answered.result()[0] == 200
        assert time.monotonic() - started < 1.5


def _drip(server, prefix: bytes, seconds: float) -> tuple[float, bytes]:
    """Send ``prefix``, then one byte every 0.2 s; (seconds until the server answered or hung up, its answer)."""
    with socket.create_connection(_address(server), timeout=5) as sock:
        sock.sendall(prefix)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(b"a")
                if select.select([sock], [], [], 0.2)[0]:
                    return time.monotonic() - started, sock.recv(65536)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started, b""
        return time.monotonic() - started, b""


@pytest.mark.parametrize("prefix", [
    b"POST /v1/chat/completions HTTP/1.1\r\nX-Drip: ",  # headers that never end
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",  # a body that never ends
], ids=["headers", "body"])
def test_a_client_dripping_bytes_faster_than_the_read_timeout_is_dropped_at_the_request_deadline(prefix):
    with ChatServer(echo, model_name="echo", read_timeout_s=1.0, request_timeout_s=1.5) as running:
        elapsed, answer = _drip(running, prefix, seconds=6.0)
        assert 1.4 < elapsed < 3.0
        assert answer.startswith(b"HTTP/1.0 408 ")
        assert _post(_address(running), _ask("hi"))[0] == 200


def test_connections_past_the_limits_get_503_and_at_most_max_workers_threads_answer():
    with ChatServer(echo, model_name="echo", latency_s=0.6, read_timeout_s=5.0, request_timeout_s=2.0,
                    max_workers=2, max_pending=3) as running, ThreadPoolExecutor(max_workers=3) as pool:
        pooled = running._httpd
        holders = [socket.create_connection(pooled.server_address[:2], timeout=5) for _ in range(2)]  # never send
        _wait_for(lambda: pooled.connections_held == 2)
        started = time.monotonic()
        asked = [pool.submit(_post, _address(running), _ask(f"waits {i}")) for i in range(3)]
        _wait_for(lambda: pooled.connections_held == 5)  # 2 silent + 3 valid: max_workers + max_pending
        refused, payload = _post(_address(running), _ask("refused"), timeout=2.0)
        assert refused == 503 and "busy" in payload["error"]["message"]
        assert time.monotonic() - started < 0.6  # refused at once, not after an answer
        assert sum(thread.name == "http-worker" for thread in threading.enumerate()) <= 2
        answers = [future.result(timeout=5.0) for future in asked]
        assert [a[1]["choices"][0]["message"]["content"] for a in answers] == [f"waits {i}" for i in range(3)]
        # The silent holders took no worker: 2 workers answered 3 requests of 0.6 s in two rounds.
        assert 1.2 <= time.monotonic() - started < 2.0
        for holder in holders:
            assert holder.recv(65536).startswith(b"HTTP/1.0 408 ")
            holder.close()
        _wait_for(lambda: pooled.connections_held == 0)
        assert _post(_address(running), _ask("after"))[0] == 200


@pytest.mark.parametrize("request_bytes, status", [
    (b"BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"GET /v1/models HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET /v1/models HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    (b"GET /v1/models HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
])
def test_unsupported_methods_versions_and_huge_headers_keep_their_status(server, request_bytes, status):
    assert _raw(server, request_bytes).startswith(f"HTTP/1.0 {status} ".encode())


def _drip_all(sockets: list[socket.socket], stop: threading.Event, every_s: float) -> None:
    """One byte to every socket each ``every_s`` (well inside the read time-out) until ``stop``."""
    while not stop.wait(every_s):
        for sock in sockets:
            try:
                sock.sendall(b"a")
            except OSError:  # answered 408 and closed: that client is done
                pass


def test_64_slow_clients_do_not_delay_a_valid_request_past_the_read_timeout():
    with ChatServer(echo, model_name="echo", read_timeout_s=2.0, request_timeout_s=4.0) as running:
        address = _address(running)
        slow = [socket.create_connection(address, timeout=10) for _ in range(64)]  # as many as there are workers
        for index, sock in enumerate(slow):  # half never end their headers, half never end their body
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nX-Drip: " if index % 2 else
                         b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100000\r\n\r\n{")
        stop = threading.Event()
        dripper = threading.Thread(target=_drip_all, args=(slow, stop, 0.3), daemon=True)
        dripper.start()
        try:
            time.sleep(0.5)  # every slow client has been accepted and is being read
            assert not [thread for thread in threading.enumerate() if thread.name == "http-worker"]  # none holds one
            started = time.monotonic()
            status, payload = _post(address, _ask("valid"), timeout=15.0)
            latency = time.monotonic() - started
            assert status == 200 and payload["choices"][0]["message"]["content"] == "valid"
            assert latency < 2.0, f"a valid request behind 64 slow clients took {latency:.2f} s (read time-out 2 s)"
            # The slow clients still end at their whole-request deadline, each with an answer.
            for sock in slow:
                assert sock.recv(65536).startswith(b"HTTP/1.0 408 ")
        finally:
            stop.set()
            dripper.join()
            for sock in slow:
                sock.close()
        assert _post(address, _ask("after"))[0] == 200
