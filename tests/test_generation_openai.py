"""The OpenAI-compatible client against the tests' own server on 127.0.0.1, faults included."""

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from phi4_recipes.generation import RequestFailed, SamplingParams, build_generator

pytest_plugins = ["generation_fixtures"]

KEY_ENV = "PHI4_RECIPES_TEST_API_KEY"
SECRET = "sk-test-0123456789-never-print-me"  # the key generation_fixtures.local_server requires
QUESTIONS = ["What is 12 plus 30?", "The cat sat on", "def add(a, b):\n", "Hello! How are you?"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture(scope="module")
def prompts(tiny_tokenizer):
    return [list(tiny_tokenizer.encode(q)) for q in QUESTIONS]


def _client(server, **kwargs):
    retry = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 10.0, **kwargs.pop("retry", {})}
    options = {"base_url": server.base_url, "api_key_env": KEY_ENV, "retry": retry, **kwargs}
    return build_generator("openai", "tiny", **options)


def _same(remote, local):
    assert [[c.token_ids for c in cs] for cs in remote] == [[c.token_ids for c in cs] for cs in local]
    for got, want in zip(sum(remote, []), sum(local, [])):
        assert got.text == want.text and got.finish_reason == want.finish_reason
        assert got.logprobs == pytest.approx(want.logprobs, abs=1e-5)


def test_client_reproduces_the_local_generator_exactly(server, tiny_generator, prompts):
    params = SamplingParams(n=2, max_new_tokens=8, seed=13, temperature=0.8, top_p=0.9)
    with _client(server) as client:
        _same(client.generate(prompts, params), tiny_generator.generate(prompts, params))
    assert server.faults.requests_seen == len(prompts)  # one request per prompt, n samples each


def test_chat_endpoint_when_the_client_has_no_tokenizer(server, tiny_generator):
    conversations = [[{"role": "user", "content": q}] for q in QUESTIONS[:2]]
    params = SamplingParams(n=2, max_new_tokens=6, seed=2)
    with _client(server) as client:
        _same(client.chat(conversations, params), tiny_generator.chat(conversations, params))


def test_chat_with_a_local_tokenizer_sends_token_ids(server, tiny_generator, tiny_tokenizer):
    conversations = [[{"role": "user", "content": QUESTIONS[0]}]]
    params = SamplingParams(n=2, max_new_tokens=6, seed=2)
    with _client(server, tokenizer=tiny_tokenizer) as client:
        _same(client.chat(conversations, params), tiny_generator.chat(conversations, params))


def test_token_logprobs_through_echo(server, tiny_generator, prompts):
    continuation = prompts[1]
    with _client(server) as client:
        remote = client.token_logprobs(prompts[0], continuation)
    assert remote == pytest.approx(tiny_generator.token_logprobs(prompts[0], continuation), abs=1e-5)
    assert len(remote) == len(continuation)


def test_token_logprobs_from_a_server_that_does_not_echo_the_prompt_fail_naming_it(server, prompts):
    # echo off (as a server that ignores it answers): only the sampled token's log-prob comes back
    with _client(server, extra_body={"echo": False}) as client, pytest.raises(RequestFailed) as failure:
        client.token_logprobs(prompts[0], prompts[1])
    assert "returned 1 log-probs for a" in str(failure.value) and "echoes the prompt's log-probs" in str(failure.value)
    assert failure.value.attempts == 1  # the server answered; asking again would get the same answer


def test_retries_through_429s_and_a_dropped_connection(server, tiny_generator, prompts, caplog):
    server.faults.add("429", "429", "drop")
    params = SamplingParams(n=2, max_new_tokens=6, seed=1)
    with caplog.at_level(logging.WARNING), _client(server) as client:
        remote = client.generate(prompts[:1], params)
    _same(remote, tiny_generator.generate(prompts[:1], params))
    assert server.faults.requests_seen == 4
    assert "HTTP 429" in caplog.text and "RemoteDisconnected" in caplog.text


def test_retries_after_a_time_out(server, tiny_generator, prompts):
    server.faults.add("stall:1.5")
    params = SamplingParams(max_new_tokens=4, seed=6)
    with _client(server, retry={"timeout_s": 0.4}) as client:
        remote = client.generate(prompts[:1], params)
    _same(remote, tiny_generator.generate(prompts[:1], params))
    assert server.faults.requests_seen == 2


def test_gives_up_after_the_last_retry_without_leaking_the_key(server, prompts, caplog):
    server.faults.add("503", "500", "503", "503")
    with caplog.at_level(logging.DEBUG), _client(server, retry={"max_retries": 2}) as client:
        with pytest.raises(RequestFailed) as failure:
            client.generate(prompts[:1], SamplingParams(max_new_tokens=4))
        shown = repr(client)
    assert failure.value.status == 503 and failure.value.attempts == 3
    assert "after 3 attempts" in str(failure.value)
    assert server.faults.requests_seen == 3
    for text in (str(failure.value), repr(failure.value), caplog.text, shown):
        assert SECRET not in text


def test_a_wrong_key_fails_at_once(server, prompts, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-also-secret")
    with _client(server) as client, pytest.raises(RequestFailed, match="HTTP 401") as failure:
        client.generate(prompts[:1], SamplingParams(max_new_tokens=4))
    assert failure.value.attempts == 1 and "sk-wrong-key-also-secret" not in str(failure.value)


def test_a_bad_request_is_not_retried(server, prompts):
    with _client(server, extra_body={"stop": ["."]}) as client, pytest.raises(RequestFailed, match="stop_token_ids"):
        client.generate(prompts[:1], SamplingParams(max_new_tokens=4))
    assert server.faults.requests_seen == 1


def test_concurrency_limit_holds(server, prompts):
    # Each request stalls so that, unlimited, all six would be in flight together.
    server.faults.add(*["stall:0.3"] * 6)
    with _client(server, max_concurrency=2) as client:
        results = client.generate(prompts + prompts[:2], SamplingParams(max_new_tokens=2))
    assert len(results) == 6
    assert server.faults.max_in_flight == 2


def test_models_endpoint(server):
    request = urllib.request.Request(server.base_url + "/models", headers={"Authorization": f"Bearer {SECRET}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["data"][0]["id"] == "tiny"


def test_server_cli_with_fault_injection(tiny_checkpoint, tiny_generator, prompts):
    """`python -m openai_server.server --port 0` (the tests' server) on a checkpoint folder, faults set over HTTP."""
    tests, src = Path(__file__).resolve().parent, str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), src, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "openai_server.server", "--model", str(tiny_checkpoint),
               "--served-model-name", "tiny", "--port", "0", "--dtype", "float32", "--api-key-env", KEY_ENV,
               "--enable-fault-injection"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        base_url = re.search(r"listening on (http://\S+)", line).group(1)

        def admin(path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(base_url.removesuffix("/v1") + path, data=data,
                                             headers={"Authorization": f"Bearer {SECRET}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        assert admin("/admin/faults", {"add": ["429", "drop"]}) == {"pending_faults": 2}
        params = SamplingParams(n=2, max_new_tokens=6, seed=4)
        client = build_generator("openai", "tiny", base_url=base_url, api_key_env=KEY_ENV, retry={"backoff_base_s": 0.01})
        with client:
            _same(client.generate(prompts[:2], params), tiny_generator.generate(prompts[:2], params))
        assert admin("/admin/stats")["requests_seen"] == 4
    finally:
        process.terminate()
        process.wait(timeout=10)
