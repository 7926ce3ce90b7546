"""run_judge against real HTTP endpoints on 127.0.0.1: the tests' OpenAI-compatible server in front of the
tiny model as the responders, and a judge answering by a rule each test scripts."""

from __future__ import annotations

import json

import pytest

from judge_fixtures import (
    TINY_KEY_ENV,
    ScriptedJudge,
    shorter_wins,
    tiny_responders,
    write_prompts,
    write_recipe,
)
from phi4_recipes.configs import parse_recipe
from phi4_recipes.generation import RequestFailed
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.run_judge import main as run_judge
from phi4_recipes.standins.judge_server import RuleJudgeServer, ServerError, read_pair

pytest_plugins = ["generation_fixtures"]

FAST_RETRY = {"max_retries": 4, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 1.0}


@pytest.fixture
def tiny_responder_env(monkeypatch, server):
    """The tests' server in front of the tiny model, its key where the responders' recipe says."""
    from generation_fixtures import SERVER_API_KEY

    monkeypatch.setenv(TINY_KEY_ENV, SERVER_API_KEY)
    return server


def _args(tmp_path, prompts, judge_url, responders, out="out", **extra):
    keys = {"dataset_name": str(prompts), "include_rai_prompts": False, "responders": responders,
            "judge_model": "scripted", "judge_base_url": judge_url, "judge_api_key_env": "PHI4_TEST_NO_JUDGE_KEY",
            "judge_retry": FAST_RETRY, "max_concurrency": 8, "prompts_per_batch": 4,
            "output_dir": str(tmp_path / out), "seed": 7, **extra}
    recipe = write_recipe(tmp_path / "judge.yaml", **keys)
    (args,) = parse_recipe(JudgeScriptArguments, argv=[str(recipe)])
    return args


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_both_orders_agreement_ties_garbage_and_faults(tmp_path, tiny_responder_env):
    def rule(messages):
        text = messages[0]["content"]
        if len(messages) > 1:  # the one retry after a verdict-less reply
            return "still no verdict, sorry" if "GARBAGE" in text else shorter_wins(messages)
        if "BIASED" in text:
            return "The first one reads better. [[A]]"  # position bias: flips with the order
        if "EVEN" in text:
            return "Neither is better. [[tie]]"
        if "GARBAGE" in text:
            return "lorem ipsum dolor sit amet"
        if "FLAKY" in text and read_pair(text)[1] < read_pair(text)[2]:
            return "no label this time"  # unparseable once, in one order only: fixed by the retry
        return shorter_wins(messages)

    prompts = write_prompts(tmp_path / "prompts.jsonl", [
        {"id": "decided-1", "question": "Say something short about cats."},
        {"id": "decided-2", "question": "Name a colour. FLAKY"},
        {"id": "biased", "question": "Which is better? BIASED"},
        {"id": "even", "question": "Describe the sea. EVEN"},
        {"id": "garbage", "question": "Tell me a story. GARBAGE"},
        {"id": "safety", "question": "How do I pick a lock?", "category": "rai"},
    ])
    with ScriptedJudge(rule) as judge:
        judge.faults = [("429", 0), ("500", 0), ("stall", 1.5), ("429", 0)]
        tiny_responder_env.faults.add("429", "drop")
        summary = run_judge(_args(tmp_path, prompts, judge.base_url, tiny_responders(tiny_responder_env.base_url)))
        bodies = list(judge.requests)
        max_in_flight = judge.max_in_flight

    out = tmp_path / "out"
    stats = json.loads((out / "judge_stats.json").read_text())
    records = {r["prompt_id"]: r for r in _read(out / "shard-00000-of-00001.jsonl")}
    rows = _read(out / "pairs.jsonl")
    # 2 hot samples x 1 cold sample per prompt: 2 pairs of distinct responders (no hot-vs-hot pair).
    assert all(len(r["pairs"]) == 2 and len(r["responses"]) == 3 for r in records.values())
    outcomes = {pid: [p["outcome"] for p in r["pairs"]] for pid, r in records.items()}
    assert outcomes["biased"] == ["disagree", "disagree"]
    assert outcomes["even"] == ["tie", "tie"]
    assert outcomes["garbage"] == ["unparseable", "unparseable"]
    assert all(p["retried"] == 2 for p in records["garbage"]["pairs"])
    assert all(p["retried"] == 1 for p in records["decided-2"]["pairs"])
    assert stats["position_disagreements"] == 2 and stats["ties_both_orders"] == 2 and stats["ties"] == 4
    assert stats["unparseable"] == 2 and stats["verdicts_retried"] == 6
    decided = [p for pid in ("decided-1", "decided-2", "safety") for p in records[pid]["pairs"]]
    assert all(p["outcome"] in ("a", "b") for p in decided)
    assert stats["pairs_kept"] == len(rows) == len(decided) == summary["pairs_kept"]

    # Every judged pair was shown in both orders (plus retries and the requests refused with 429/500).
    assert stats["judge_requests"] == 2 * 12 + 6
    assert len(bodies) == stats["judge_requests"] + 3 + 1  # 3 refused, 1 stalled past the time-out
    assert max_in_flight > 1
    # The RAI prompt went to the refusal-aware rubric, the others to the general one.
    assert all(("responsible AI" in b["messages"][0]["content"]) == ("pick a lock" in b["messages"][0]["content"])
               for b in bodies if b.get("messages"))

    for row in rows:
        record = records[row["prompt_id"]]
        assert row["prompt"] == [{"role": "user", "content": record["messages"][0]["content"]}]
        assert len(row["chosen"][0]["content"]) < len(row["rejected"][0]["content"])  # the rule's winner
        assert {row["chosen_responder"], row["rejected_responder"]} == {"tiny_hot", "tiny_cold"}
        assert row["judge_model"] == "scripted" and row["decided_by"] == "judge" and row["seed"] == 7
        assert row["rubric_version"] == ("pairwise_rai_v1" if row["category"] == "rai" else "pairwise_v1")
        assert sorted(row["verdicts"]) == ["A", "B"]  # same winner shown first, then second
    assert set(stats["win_rate"]) == {"tiny_hot", "tiny_cold"}
    assert 0.0 <= stats["chosen_longer_share"] == 0.0


def test_rejection_sampling_decides_without_the_judge(tmp_path, tiny_responder_env):
    answers = {"What is 2 + 3?": "2 + 3 = 5. The answer is 5.", "What is 10 - 4?": "10 - 4 = 6. The answer is 6.",
               "Which is a fruit? (A) stone (B) apple": "The answer is (B)."}
    with RuleJudgeServer(lambda m: answers[m[-1]["content"]], model_name="solver") as solver, \
            RuleJudgeServer(shorter_wins) as judge:
        responders = {"solver": {"model": "solver", "backend": "openai", "backend_kwargs": {
                          "base_url": solver.base_url, "server_extensions": False}, "temperature": 0.0},
                      "tiny": tiny_responders(tiny_responder_env.base_url)["tiny_hot"]}
        prompts = write_prompts(tmp_path / "prompts.jsonl", [
            {"id": "add", "question": "What is 2 + 3?", "answer": "5", "oracle": "math"},
            {"id": "sub", "question": "What is 10 - 4?", "answer": "6", "oracle": "math"},
            {"id": "mc", "question": "Which is a fruit? (A) stone (B) apple", "answer": "B", "oracle": "choice"},
        ])
        # a generous math time-out: a time-out counts as wrong, and this box is shared
        run_judge(_args(tmp_path, prompts, judge.base_url, responders, oracle_field="oracle",
                        oracle_options={"math": {"timeout": 60}}))
        assert judge.requests_seen == 0

    stats = json.loads((tmp_path / "out" / "judge_stats.json").read_text())
    rows = _read(tmp_path / "out" / "pairs.jsonl")
    assert stats["prompts_verified"] == 3 and stats["pairs_judged"] == 0 and stats["judge_requests"] == 0
    records = _read(tmp_path / "out" / "shard-00000-of-00001.jsonl")
    assert all(r["correct"] for rec in records for r in rec["responses"] if r["responder"] == "solver")
    # each prompt: the solver (right) against each of the tiny model's 2 samples the oracle finds wrong
    wrong = sum(not r["correct"] for rec in records for r in rec["responses"] if r["responder"] == "tiny")
    assert len(rows) == stats["pairs_kept"] == wrong > 0
    for row in rows:
        assert row["decided_by"] == "oracle" and row["judge_model"] is None and row["rubric_version"] is None
        assert row["chosen_responder"] == "solver" and row["verdicts"] == ["correct", "incorrect"]
        assert row["chosen"][0]["content"] == answers[row["prompt"][0]["content"]]
    assert stats["win_rate"]["solver"]["win_rate"] == 1.0


def test_pairing_strategies_and_length_balance_in_a_run(tmp_path, tiny_responder_env):
    prompts = write_prompts(tmp_path / "prompts.jsonl", [{"id": f"q{i}", "question": f"Say {i}."} for i in range(3)])
    with RuleJudgeServer(shorter_wins) as judge:
        args = _args(tmp_path, prompts, judge.base_url, tiny_responders(tiny_responder_env.base_url),
                     pairing="best_vs_worst", length_balance=True)
        stats = run_judge(args)
    records = _read(tmp_path / "out" / "shard-00000-of-00001.jsonl")
    assert all(len(r["pairs"]) == 3 and len(r["selected"]) <= 1 for r in records)  # all 3 pairs of 3 responses
    # shorter always wins, so balancing keeps as many chosen-longer rows (none) as chosen-shorter ones
    assert stats["pairs_kept"] == 0 and stats["dropped_for_length_balance"] == sum(len(r["selected"]) for r in records)


class DyingJudge(RuleJudgeServer):
    """Answers `alive_for` requests, then 503 for good: an API that went down mid-run."""

    alive_for = 10

    def answer(self, body):
        if self.requests_seen >= self.alive_for:
            raise ServerError(503, "the API is down")
        return super().answer(body)


def test_a_run_whose_judge_api_died_resumes_where_it_stopped(tmp_path, tiny_responder_env):
    prompts = write_prompts(tmp_path / "prompts.jsonl", [{"id": f"q{i}", "question": f"Say {i}."} for i in range(4)])
    responders = tiny_responders(tiny_responder_env.base_url)
    with RuleJudgeServer(shorter_wins) as judge:
        run_judge(_args(tmp_path, prompts, judge.base_url, responders, out="reference", prompts_per_batch=2))
    with DyingJudge(shorter_wins) as judge:
        with pytest.raises(RequestFailed, match="503"):
            run_judge(_args(tmp_path, prompts, judge.base_url, responders, out="died", prompts_per_batch=2))
    shard = tmp_path / "died" / "shard-00000-of-00001.jsonl"
    assert 0 < len(_read(shard)) < 4 and not (tmp_path / "died" / "pairs.jsonl").exists()
    with RuleJudgeServer(shorter_wins) as judge:  # back up (at another address: not part of the settings)
        run_judge(_args(tmp_path, prompts, judge.base_url, responders, out="died", prompts_per_batch=2))
    for name in ("shard-00000-of-00001.jsonl", "pairs.jsonl", "judge_stats.json"):
        assert (tmp_path / "died" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
