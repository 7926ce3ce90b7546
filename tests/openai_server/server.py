"""Test infrastructure: a small OpenAI-compatible HTTP server around any `Generator`, with fault injection.

    python tests/openai_server/server.py --model PATH --port 0   (from the repository root)

Users who want to serve a checkpoint use `vllm serve PATH` or `transformers serve`; this one exists for the
tests.

prints `listening on http://HOST:PORT/v1` once bound. Endpoints: GET /v1/models, POST /v1/completions
(prompt as text or token ids), POST /v1/chat/completions. It exists so the `openai` backend, and tools
that speak the OpenAI API, can be run against a local model without vLLM; and so tests can exercise
the client's retry paths: `--enable-fault-injection` (or `server.faults` in-process) makes the next
requests answer 429/5xx, drop the connection or stall. Requests are served one generation at a time.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import socket
import threading
import time

from phi4_recipes.generation.base import Generator
from phi4_recipes.standins.chat_server import BackgroundHTTPServer, HardenedRequestHandler

from .faults import FaultPlan
from .protocol import (
    BadRequest,
    chat_response,
    completions_response,
    error_body,
    models_response,
    parse_completion_prompts,
    parse_sampling_params,
)

logger = logging.getLogger(__name__)

_STATUS_TEXT = {429: "rate limited (injected)", 500: "internal error (injected)", 503: "overloaded (injected)"}


class OpenAICompatibleServer(BackgroundHTTPServer):
    """Serves `generator` on HOST:PORT in a background thread.

    Args:
        generator: what answers requests.
        model_name: the id reported by /v1/models and echoed in responses.
        host, port: where to bind; port 0 picks a free port (read `.port` afterwards).
        api_key: when set, requests must send `Authorization: Bearer <api_key>`.
        enable_fault_admin: expose POST /admin/faults and GET /admin/stats (tests that run the server as
            a subprocess use them; in-process tests use `.faults` directly).
    """

    def __init__(
        self,
        generator: Generator,
        model_name: str = "local",
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        enable_fault_admin: bool = False,
    ):
        self.generator = generator
        self.model_name = model_name
        self.faults = FaultPlan()
        self.enable_fault_admin = enable_fault_admin
        self._api_key = api_key
        self._generate_lock = threading.Lock()
        super().__init__(host, port, _make_handler(self))

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def authorized(self, header: str | None) -> bool:
        if self._api_key is None:
            return True
        expected = f"Bearer {self._api_key}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    def answer(self, path: str, body: dict) -> dict:
        """Run one generation request; the lock keeps one model call at a time (and results seed-exact)."""
        with self._generate_lock:
            params = parse_sampling_params(body)
            if path == "/v1/completions":
                prompts = parse_completion_prompts(body.get("prompt"), self.generator.tokenizer)
                return completions_response(self.generator, self.model_name, body, prompts, params)
            return chat_response(self.generator, self.model_name, body, params)


def _make_handler(server: OpenAICompatibleServer):
    class Handler(HardenedRequestHandler):
        server_version = "phi4-recipes-openai/0.1"

        def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
            # The request line only; headers (and with them any API key) are never logged.
            logger.debug("%s - %s", self.address_string(), format % args)

        def do_GET(self):
            if not server.authorized(self.headers.get("Authorization")):
                return self._send(401, error_body("invalid or missing API key", "authentication_error"))
            if self.path == "/v1/models":
                return self._send(200, models_response(server.model_name))
            if self.path == "/admin/stats" and server.enable_fault_admin:
                plan = server.faults
                return self._send(200, {"requests_seen": plan.requests_seen, "max_in_flight": plan.max_in_flight,
                                        "pending_faults": plan.pending()})
            return self._send(404, error_body(f"no route GET {self.path}", "not_found"))

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not server.authorized(self.headers.get("Authorization")):
                return self._send(401, error_body("invalid or missing API key", "authentication_error"))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as err:
                return self._send(400, error_body(f"body is not JSON: {err}", "invalid_request_error"))
            if self.path == "/admin/faults" and server.enable_fault_admin:
                if body.get("clear"):
                    server.faults.clear()
                server.faults.add(*body.get("add", []))
                return self._send(200, {"pending_faults": server.faults.pending()})
            if self.path not in ("/v1/completions", "/v1/chat/completions"):
                return self._send(404, error_body(f"no route POST {self.path}", "not_found"))
            fault = server.faults.begin_request()
            self._counted = True
            try:
                if fault is not None and fault.kind == "drop":
                    # What a crashed worker or a proxy reset looks like to the client: no status line at all.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if fault is not None and fault.kind == "stall":
                    time.sleep(fault.seconds)
                elif fault is not None:
                    status = int(fault.kind)
                    return self._finish(status, error_body(_STATUS_TEXT[status], "server_error"), retry_after=0)
                try:
                    return self._finish(200, server.answer(self.path, body))
                except BadRequest as err:
                    return self._finish(400, error_body(str(err), "invalid_request_error"))
                except Exception as err:  # a bug in one request must not take the server down
                    logger.exception("request to %s failed", self.path)
                    return self._finish(500, error_body(f"{type(err).__name__}: {err}", "server_error"))
            finally:
                self._end_request()

        def _end_request(self) -> None:
            if getattr(self, "_counted", False):
                self._counted = False
                server.faults.end_request()

        def _finish(self, status: int, payload: dict, retry_after: int | None = None) -> None:
            # The request leaves the in-flight count before its response is written: a client whose slot the
            # response frees may send its next request at once, and must not be counted beside this one.
            self._end_request()
            return self._send(status, payload, retry_after)

        def _send(self, status: int, payload: dict, retry_after: int | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                logger.debug("client went away before the %d response was written", status)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="local checkpoint folder (or Hub id)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder; defaults to --model")
    parser.add_argument("--served-model-name", default=None, help="id reported by /v1/models; defaults to --model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed once bound)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default=None)
    parser.add_argument("--max-batch-rows", type=int, default=64)
    parser.add_argument("--api-key-env", default=None,
                        help="name of an environment variable holding the key clients must send")
    parser.add_argument("--enable-fault-injection", action="store_true",
                        help="expose POST /admin/faults and GET /admin/stats (for tests)")
    args = parser.parse_args(argv)

    from phi4_recipes.generation.transformers_backend import TransformersGenerator

    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    generator = TransformersGenerator(args.model, tokenizer, max_batch_rows=args.max_batch_rows,
                                      dtype=args.dtype, device=args.device)
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        parser.error(f"--api-key-env {args.api_key_env}: that environment variable is empty or unset")
    server = OpenAICompatibleServer(generator, args.served_model_name or args.model, args.host, args.port,
                                    api_key=api_key, enable_fault_admin=args.enable_fault_injection)
    print(f"listening on {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
