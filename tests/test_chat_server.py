"""The package's chat endpoint for stand-ins survives hostile and broken clients (issue 13, section 6).

Every request goes to a real server on 127.0.0.1; the flood is bounded in count and time.
"""

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from phi4_recipes.standins.chat_server import ChatServer

KEY = "s3cret"


def echo(body: dict, index: int, n: int) -> str:
    return f"{index}/{n}: {body['messages'][-1]['content']}"


@pytest.fixture
def server():
    with ChatServer(echo, model_name="echo", api_key=KEY, max_body_bytes=4096, read_timeout_s=1.0) as running:
        yield running


def _post(server, body: bytes, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, dict]:
    host, port = server._httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    sent = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Content-Length": str(len(body)),
            **(headers or {})}
    connection.putrequest("POST", "/v1/chat/completions")
    for name, value in sent.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body)
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def _chat(**fields) -> bytes:
    return json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def test_answers_a_well_formed_request_with_n_choices(server):
    status, payload = _post(server, _chat(n=2, max_tokens=8, temperature=0.5))
    assert status == 200
    assert [c["message"]["content"] for c in payload["choices"]] == ["0/2: hi", "1/2: hi"]


@pytest.mark.parametrize("body, field", [
    (b"[1, 2]", "JSON object"),
    (b"{not json", "not valid JSON"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "not valid JSON"),
    (_chat(temperature="hot"), "'temperature'"),
    (_chat(max_tokens=0), "'max_tokens'"),
    (_chat(n=10_000), "'n'"),
    (json.dumps({"messages": "hi"}).encode(), "'messages'"),
    (json.dumps({"messages": [{"role": "user"}]}).encode(), "messages[0]"),
])
def test_malformed_requests_get_400_naming_the_field(server, body, field):
    status, payload = _post(server, body)
    assert status == 400 and field in payload["error"]["message"]


def test_the_key_is_checked_before_the_body_is_read(server):
    started = time.monotonic()
    status, _ = _post(server, b"", headers={"Authorization": "Bearer wrong", "Content-Length": str(200 * 2**20)})
    assert status == 401 and time.monotonic() - started < 2.0
    assert server.requests_seen == 0


def test_oversized_negative_and_short_bodies_are_refused_without_hanging(server):
    started = time.monotonic()
    assert _post(server, b"", headers={"Content-Length": str(200 * 2**20)})[0] == 413  # refused unread
    assert _post(server, b"", headers={"Content-Length": "-1"})[0] == 400
    status, payload = _post(server, b'{"messages"', headers={"Content-Length": "500"})  # client stops sending
    assert status == 400 and "body" in payload["error"]["message"]
    assert time.monotonic() - started < 4.0


def test_a_bounded_flood_of_good_bad_and_stalled_clients_leaves_it_serving(server):
    host, port = server._httpd.server_address[:2]
    stalled = [socket.create_connection((host, port), timeout=5) for _ in range(8)]  # open, never send
    bodies = [_chat(), b"[]", _chat(max_tokens=0), b"{", _chat(n=3)] * 40  # 200 requests
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda body: _post(server, body)[0], bodies))
    for connection in stalled:
        connection.close()
    assert statuses.count(200) == 80 and statuses.count(400) == 120
    assert _post(server, _chat())[0] == 200  # still serving
    assert threading.active_count() < 60  # handler threads of finished requests are gone


def test_a_long_running_server_keeps_a_count_not_the_bodies():
    import tracemalloc

    body = json.dumps({"messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
    with ChatServer(echo, model_name="echo") as running:
        assert _post(running, body)[0] == 200  # warm-up: the first answer fills caches tracemalloc would count
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(200):
                assert _post(running, body)[0] == 200
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert running.requests_seen == 201
    # Keeping each ~20 KB body would add ~4 MB; a count adds nothing however long the server runs.
    assert grown < 1_000_000, f"the server kept {grown} bytes over 200 requests"
