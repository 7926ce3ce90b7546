"""Every synth workflow end to end: against an OpenAI-compatible server on 127.0.0.1 (the rule-based stand-in
where the test needs specific replies, the tests' server around the tiny model otherwise), and with the
transformers backend on the tiny model."""

from __future__ import annotations

import pytest

from openai_server import OpenAICompatibleServer
from phi4_recipes.data.tiny import arithmetic_problems
from phi4_recipes.hashing import stable_hash
from phi4_recipes.standins.synth_server import StandinServer
from phi4_recipes.verify import sandbox_available
from synth_helpers import assert_provenance, run_workflow, source_ids

pytest_plugins = ["generation_fixtures"]

PAGE_GOOD = ("There were 16 shells on a shelf. 8 were taken, so 16 - 8 = 8 shells remain. "
             "Ben has 3 packs of 4 cards, so 3 * 4 = 12 cards. The answer is 12.")
PAGE_POOR = "Jade counts books at the market. Hana shares shells at home."
PROSE = "Jade counts 34 books at the market. Hana shares 85 shells at home. The sky was grey."
CODE = "def add(a, b):\n    return a + b\n\n\nprint(add(6, 6))  # 12\n"


@pytest.fixture(scope="module")
def standin():
    with StandinServer() as server:
        yield server


def _via(server) -> dict:
    return {"backend": "openai", "model_name_or_path": "standin", "base_url": server.base_url}


def _by_bucket() -> dict[str, dict]:
    """One arithmetic question the stand-in answers unanimously, one it scatters, one with a 3-1 plurality."""
    wanted = {0: "easy", 1: "hard"}
    found = {}
    for problem in arithmetic_problems("train", 60):
        bucket = wanted.get(stable_hash(problem["question"]) % 10, "plural")
        found.setdefault(bucket, {k: problem[k] for k in ("id", "question", "answer")})
    return found


def test_seed_curation_scores_pages_then_passages(standin, tmp_path):
    rows = [{"id": "good", "text": PAGE_GOOD}, {"id": "poor", "text": PAGE_POOR}, {"id": "empty", "text": ""}]
    out = run_workflow(tmp_path, "seed_curation", rows, workflow_options={"passage_words": 12}, **_via(standin))
    assert source_ids(out) == {"good", "poor", "empty"}
    assert {r["provenance"]["source_id"] for r in out["data"]} == {"good"} and len(out["data"]) >= 2
    scores = out["data"][0]["provenance"]["scores"]
    assert set(scores) == {"page_educational_value", "page_reasoning_depth", "passage_factual", "passage_reasoning"}
    start, end = out["data"][0]["passage_span"]
    assert PAGE_GOOD[start:end] == out["data"][0]["text"]
    assert [d["reason"] for d in out["dropped"] if d["id"] == "poor"] == ["page_below_threshold"]
    assert out["bad"] == [{"id": "empty", "reason": "missing_field:text", "detail": "got str"}]
    assert_provenance(out, "seed_curation", "standin")


def test_plurality_drops_all_agree_and_no_plurality_and_replaces_answers(standin, tmp_path):
    questions = _by_bucket()
    rows = [questions["easy"], questions["hard"], {**questions["plural"], "answer": "999"},
            {"id": "no-question", "answer": "3"}]
    out = run_workflow(tmp_path, "plurality", rows, dedup=False, **_via(standin),
                       workflow_options={"num_answers": 4, "replace_answer": True})
    reasons = {d["id"]: d["reason"] for d in out["dropped"]}
    assert reasons == {questions["easy"]["id"]: "all_agree", questions["hard"]["id"]: "no_plurality"}
    [kept] = out["data"]
    assert kept["provenance"]["source_id"] == questions["plural"]["id"]
    assert kept["agreement"] == 0.75 and kept["pseudo_label"] == questions["plural"]["answer"]
    assert kept["given_answer"] == "999" and kept["answer_replaced"] and kept["answer"] == kept["pseudo_label"]
    assert [m["role"] for m in kept["messages"]] == ["user", "assistant"] and "text" not in kept
    assert out["bad"][0]["id"] == "no-question" and out["bad"][0]["reason"] == "missing_field:question"
    assert_provenance(out, "plurality", "standin")


def test_qa_extraction_grounds_every_pair_in_its_passage(standin, tmp_path):
    out = run_workflow(tmp_path, "qa_extraction", [{"id": "p", "text": PROSE}, {"id": "none", "text": "Grey sky."}],
                       **_via(standin))
    assert len(out["data"]) == 2
    for row in out["data"]:
        span = row["support"]
        assert PROSE[span["start"]:span["end"]] == span["text"] and row["answer"] in span["text"]
    assert [d["reason"] for d in out["dropped"]] == ["no_pairs"]
    assert_provenance(out, "qa_extraction", "standin")


def test_rewrite_keeps_every_round_until_the_rubric_passes(standin, tmp_path):
    seed = "Hana has 8 marbles and gives away 4. How many marbles are left? 8 - 4 = 4. The answer is 4."
    out = run_workflow(tmp_path, "rewrite", [{"id": "s", "text": seed}], **_via(standin))
    [row] = out["data"]
    assert [r["passed"] for r in row["rounds"]] == [False, True] and row["revisions"] == 1
    assert row["rounds"][0]["feedback"] and row["text"].endswith("Check: 4 + 4 = 8.")
    assert row["provenance"]["scores"]["passed"] is True
    assert_provenance(out, "rewrite", "standin")


@pytest.mark.skipif(not sandbox_available(), reason="needs the code sandbox")
def test_instruction_reversal_keeps_only_faithful_pairs(standin, tmp_path):
    rows = [{"id": "sim", "text": CODE},
            {"id": "tested", "text": CODE, "tests": ["assert add(2, 3) == 5"]},
            {"id": "broken", "text": CODE.replace("a + b", "a - b"), "tests": ["assert add(2, 3) == 5"]},
            {"id": "loose", "text": "x = [i for i in range(3)]\nprint(sum(x))\n"}]
    out = run_workflow(tmp_path, "instruction_reversal", rows, dedup=False, **_via(standin))
    assert {r["provenance"]["source_id"] for r in out["data"]} == {"sim", "tested"}
    assert {d["id"]: d["reason"] for d in out["dropped"]} == {"broken": "original_fails_tests",
                                                              "loose": "below_similarity"}
    row = next(r for r in out["data"] if r["provenance"]["source_id"] == "sim")
    assert row["messages"][0]["content"].startswith("Write a Python function `add(a, b)`")
    assert row["messages"][1]["content"] == f"```python\n{CODE.strip()}\n```"
    assert row["provenance"]["scores"]["similarity"] >= 0.6
    assert_provenance(out, "instruction_reversal", "standin")


@pytest.mark.skipif(not sandbox_available(), reason="needs the code sandbox")
def test_validation_drops_failures_by_reason(standin, tmp_path):
    def chat(q, a):
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    rows = [{"id": "m-ok", "question": "1+2?", "answer": "3", "messages": chat("1+2?", "The answer is 3.")},
            {"id": "m-bad", "question": "1+2?", "answer": "3", "messages": chat("1+2?", "The answer is 4.")},
            {"id": "c-ok", "kind": "code", "question": "add", "tests": ["assert add(1, 2) == 3"],
             "messages": chat("add", f"```python\n{CODE}```")},
            {"id": "c-bad", "kind": "code", "question": "add", "tests": ["assert add(1, 2) == 4"],
             "messages": chat("add", f"```python\n{CODE}```")},
            {"id": "m-noref", "question": "1+2?", "messages": chat("1+2?", "3")}]
    out = run_workflow(tmp_path, "validation", rows, dedup=False, workflow_options={"oracle_field": "kind"})
    assert {r["provenance"]["source_id"] for r in out["data"]} == {"m-ok", "c-ok"}
    assert {d["id"]: d["reason"] for d in out["dropped"]} == {"m-bad": "math_wrong", "c-bad": "code_failed_tests"}
    assert out["bad"] == [{"id": "m-noref", "reason": "missing_field:answer", "detail": "got NoneType"}]
    assert out["report"]["dropped_by_reason"] == {"code_failed_tests": 1, "math_wrong": 1}
    assert_provenance(out, "validation", None)
    # The same rows with the model writing each response, through the endpoint.
    out = run_workflow(tmp_path, "validation", rows[:3], name="generated", dedup=False, **_via(standin),
                       workflow_options={"oracle_field": "kind", "generate_responses": True})
    assert source_ids(out) == {"m-ok", "m-bad", "c-ok"}
    assert_provenance(out, "validation", "standin")


# The tiny, untrained model writes nothing parseable: each workflow must still finish, and account for every
# row as kept, dropped or bad (with its id), whichever backend samples.
TINY_CASES = {
    "seed_curation": ([{"id": "a", "text": PAGE_GOOD}, {"id": "b", "text": PROSE}], {}),
    "plurality": ([{"id": "a", "question": "1 + 2?"}, {"id": "b", "question": "2 + 2?"}], {"num_answers": 2}),
    "qa_extraction": ([{"id": "a", "text": PROSE}], {}),
    "rewrite": ([{"id": "a", "text": PAGE_GOOD}], {"max_revisions": 1}),
    "instruction_reversal": ([{"id": "a", "text": CODE}], {}),
    "validation": ([{"id": "a", "question": "1 + 2?", "answer": "3"}], {"generate_responses": True}),
}


@pytest.mark.parametrize("workflow", sorted(TINY_CASES))
def test_every_workflow_on_the_tiny_model_transformers_backend(workflow, tiny_checkpoint, tmp_path):
    rows, options = TINY_CASES[workflow]
    out = run_workflow(tmp_path, workflow, rows, backend="transformers", model_name_or_path=str(tiny_checkpoint),
                       max_new_tokens=6, workflow_options=options)
    assert source_ids(out) == {r["id"] for r in rows}
    assert out["report"]["source_rows"] == len(rows)
    assert all(b["reason"] for b in out["bad"])
    assert_provenance(out, workflow, str(tiny_checkpoint))


@pytest.mark.parametrize("workflow", sorted(TINY_CASES))
def test_every_workflow_against_the_test_server_with_the_tiny_model(workflow, tiny_generator, tmp_path):
    rows, options = TINY_CASES[workflow]
    with OpenAICompatibleServer(tiny_generator, model_name="tiny") as server:
        out = run_workflow(tmp_path, workflow, rows, backend="openai", model_name_or_path="tiny",
                           base_url=server.base_url, max_new_tokens=6, workflow_options=options)
    assert source_ids(out) == {r["id"] for r in rows}
    assert_provenance(out, workflow, "tiny")
