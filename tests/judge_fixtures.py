"""Shared pieces of tests/test_judge_*.py: scripted judge endpoints, prompt files and recipes.

Plain helpers (import them); the model fixtures come from generation_fixtures.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import yaml

from phi4_recipes.standins.judge_server import RuleJudgeServer, ServerError, read_pair

TINY_KEY_ENV = "PHI4_TEST_TINY_SERVER_KEY"


class ScriptedJudge(RuleJudgeServer):
    """A judge endpoint answering by `rule`, with planned HTTP errors and stalls, counting what is in flight."""

    def __init__(self, rule, **kwargs):
        super().__init__(rule, **kwargs)
        self.faults: list[tuple[str, float]] = []  # ("429"|"500"|"stall", seconds), taken one per request
        self.in_flight = self.max_in_flight = 0
        self.requests: list[dict] = []  # every body, for the tests to inspect (the server itself keeps none)
        self._count = threading.Lock()

    def note_request(self, body: dict) -> None:
        super().note_request(body)
        with self._count:
            self.requests.append(body)

    def answer(self, body: dict) -> dict:
        with self._count:
            fault = self.faults.pop(0) if self.faults else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault and fault[0] == "stall":
                import time

                # Counted on arrival: the client gives up and retries long before this answer would be
                # written, so the count must not wait for the sleep (on a loaded machine the run can end first).
                self.note_request(body)
                time.sleep(fault[1])
                raise ServerError(504, "stalled past the client's time-out")
            if fault:
                self.note_request(body)
                raise ServerError(int(fault[0]), "injected")
            return super().answer(body)
        finally:
            with self._count:
                self.in_flight -= 1


def shorter_wins(messages: list[dict]) -> str:
    """An order-independent judge: the shorter response wins, equal lengths tie."""
    _, a, b = read_pair(messages[0]["content"])
    if len(a) == len(b):
        return "Same length. [[tie]]"
    return f"Shorter is better. [[{'A' if len(a) < len(b) else 'B'}]]"


def write_prompts(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_recipe(path: Path, **keys) -> Path:
    path.write_text(yaml.safe_dump(keys, sort_keys=False))
    return path


def tiny_responders(base_url: str) -> dict:
    """Two responders on the tests' OpenAI-compatible server in front of the tiny model."""
    backend = {"base_url": base_url, "api_key_env": TINY_KEY_ENV,
               "retry": {"max_retries": 4, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 30}}
    return {"tiny_hot": {"model": "tiny", "backend": "openai", "backend_kwargs": backend, "temperature": 1.0,
                         "samples": 2, "max_new_tokens": 12},
            "tiny_cold": {"model": "tiny", "backend": "openai", "backend_kwargs": backend, "temperature": 0.5,
                          "samples": 1, "max_new_tokens": 12}}

