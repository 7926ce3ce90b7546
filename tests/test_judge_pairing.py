"""Pairing strategies, both-order outcomes, length balancing, rubrics and prompt sets, without any endpoint."""

from __future__ import annotations

import pytest

from phi4_recipes.judge.export import balance_lengths, dpo_rows, drop_duplicate_pairs
from phi4_recipes.judge.labelling import combine_orders, oracle_outcome
from phi4_recipes.judge.pairing import candidate_pairs, select_pairs
from phi4_recipes.judge.prompt_sets import builtin_rai_prompts, read_prompt_rows
from phi4_recipes.judge.rubrics import available_rubrics, load_rubric
from phi4_recipes.recipe_checks import RecipeError

NAMES = ["policy", "policy", "gpt-4o", "gpt-4t"]  # policy has 2 samples


def test_candidate_pairs_per_strategy():
    assert candidate_pairs(NAMES, "all_pairs") == [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # never policy-policy
    assert candidate_pairs(NAMES, "policy_vs_others", "policy") == [(0, 2), (0, 3), (1, 2), (1, 3)]
    assert len(candidate_pairs(NAMES, "best_vs_worst")) == 6  # every pair of responses, to score them
    with pytest.raises(ValueError, match="unknown pairing"):
        candidate_pairs(NAMES, "random")


@pytest.mark.parametrize("first, second, outcome", [
    ("A", "B", "a"),        # a shown first wins, and a shown second wins
    ("B", "A", "b"),
    ("A", "A", "disagree"),  # always the first shown: position bias
    ("tie", "tie", "tie"),
    ("A", "tie", "disagree"),
    (None, "B", "unparseable"),
])
def test_both_orders_must_agree(first, second, outcome):
    assert combine_orders(first, second) == outcome


def test_oracle_outcome():
    assert oracle_outcome(True, False) == "a" and oracle_outcome(False, True) == "b"
    assert oracle_outcome(True, True) == oracle_outcome(False, False) == "same_correctness"


def test_select_pairs_best_vs_worst_takes_the_extremes_when_their_comparison_agrees():
    pairs = [{"a": 0, "b": 1, "outcome": "a"}, {"a": 0, "b": 2, "outcome": "a"}, {"a": 1, "b": 2, "outcome": "a"}]
    assert select_pairs(pairs, "best_vs_worst", 3) == [{"pair": 1, "chosen": 0, "rejected": 2}]
    pairs[1]["outcome"] = "disagree"  # best and worst were never told apart: no pair
    assert select_pairs(pairs, "best_vs_worst", 3) == []
    assert select_pairs(pairs, "all_pairs", 3) == [{"pair": 0, "chosen": 0, "rejected": 1},
                                                   {"pair": 2, "chosen": 1, "rejected": 2}]


def _row(i, chosen, rejected):
    return {"id": f"p{i}", "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def test_length_balance_evens_chosen_longer_and_shorter():
    rows = [_row(i, "long answer", "short") for i in range(6)] + [_row(9, "a", "bb"), _row(10, "same", "SAME")]
    kept, dropped = balance_lengths(rows)
    assert dropped == 5 and len(kept) == 3
    assert sum(len(r["chosen"][0]["content"]) > len(r["rejected"][0]["content"]) for r in kept) == 1
    assert balance_lengths(rows) == (kept, dropped)  # stable: by row-id hash, not by chance


def test_dpo_rows_carry_provenance():
    record = {"prompt_id": "q1", "category": "rai", "oracle": None, "seed": 5,
              "messages": [{"role": "user", "content": "hi"}],
              "responses": [{"responder": "x", "text": "one"}, {"responder": "y", "text": "two"}],
              "pairs": [{"a": 0, "b": 1, "decided_by": "judge", "outcome": "b", "verdicts": ["B", "A"]}],
              "selected": [{"pair": 0, "chosen": 1, "rejected": 0}]}
    [row] = dpo_rows([record], "gpt-4o", {"general": "pairwise_v1", "rai": "pairwise_rai_v1"})
    assert row["chosen"] == [{"role": "assistant", "content": "two"}] and row["prompt"] == record["messages"]
    assert (row["chosen_responder"], row["rejected_responder"], row["judge_model"], row["rubric_version"],
            row["verdicts"], row["seed"]) == ("y", "x", "gpt-4o", "pairwise_rai_v1", ["B", "A"], 5)


def test_rubrics_are_versioned_package_data():
    assert {"pairwise_v1", "pairwise_rai_v1"} <= set(available_rubrics())
    rubric = load_rubric("pairwise_v1")
    [message] = rubric.messages("What is {x}?", "A {brace}", "B")
    assert "What is {x}?" in message["content"] and "A {brace}" in message["content"]
    text = rubric.template.lower()
    assert text.index("correctness") < text.index("helpfulness") < text.index("clarity")
    assert "length is not a merit" in text
    assert "refus" in load_rubric("pairwise_rai_v1").template.lower()
    with pytest.raises(RecipeError, match="shipped rubrics"):
        load_rubric("pairwise_v0")


def test_prompt_rows_and_builtin_rai_set():
    rows = [{"id": "a", "question": "2+2?", "answer": "4", "oracle": "math"},
            {"id": "b", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            {"id": "c", "question": "q", "answer": "", "oracle": "math"}]
    a, b, c = read_prompt_rows(rows, "mem", oracle_field="oracle")
    assert a.verifiable and a.reference == "4" and not b.verifiable and not c.verifiable  # no reference: judged
    assert b.messages == [{"role": "user", "content": "hi"}]  # the SFT answer is dropped
    with pytest.raises(ValueError, match="duplicate id"):
        read_prompt_rows([rows[0], rows[0]], "mem")
    rai = builtin_rai_prompts()
    assert len(rai) >= 10 and all(p.category == "rai" and not p.verifiable for p in rai)


@pytest.mark.parametrize("responders, message", [
    ({"a": {"model": "x", "temprature": 1}, "b": {"model": "y"}}, r"responders\.a: unknown key 'temprature' \(did you mean 'temperature'\?\)"),
    ({"a": {"model": "x", "samples": "two"}, "b": {"model": "y"}}, r"responders\.a: key 'samples' expects int"),
    ({"a": {"model": "x", "backend": "tgi"}, "b": {"model": "y"}}, r"responders\.a: backend 'tgi'"),
    ({"a": {"model": "x"}}, "at least two responders"),
])
def test_bad_responders_fail_naming_the_responder_and_key(responders, message):
    from phi4_recipes.judge.responders import parse_responders

    with pytest.raises(RecipeError, match=message):
        parse_responders(responders, "judge.yaml")


def test_stand_in_judge_prefers_a_refusal_and_ties_two_compliant_answers_to_a_risky_request():
    from phi4_recipes.standins.judge_server import rule_verdict

    rai = load_rubric("pairwise_rai_v1")
    risky = "How do I pick a lock to get into my neighbour's house?"
    refusal, compliant = "Sorry, I can't help with breaking in.", "Use a tension wrench and rake the pins."
    assert rule_verdict(rai.messages(risky, compliant, refusal)).endswith("[[B]]")
    assert rule_verdict(rai.messages(risky, refusal, compliant)).endswith("[[A]]")
    # Neither declines: no safety preference, whatever the wording (the tiny pipeline's model answers
    # arithmetic to every prompt, and those pairs once made 43% of its judge-DPO data).
    assert rule_verdict(rai.messages(risky, compliant, "12 + 3: 2 + 3 = 5, carry 0. The answer is 15.")).endswith(
        "[[tie]]")
    # The general rubric still compares two answers.
    general = load_rubric("pairwise_v1")
    assert not rule_verdict(general.messages("What is 12 + 3?", "12 + 3 = 15.", "15 15 15 15 15")).endswith("[[tie]]")


def test_repeated_pairs_of_one_prompt_are_written_once():
    # Three samples, two of them word for word the same: all_pairs compares each with the wrong one.
    record = {"prompt_id": "q1", "category": "general", "oracle": "math", "seed": 0,
              "messages": [{"role": "user", "content": "2 + 3?"}],
              "responses": [{"responder": "t0.7", "text": "5"}, {"responder": "t0.7", "text": "5"},
                            {"responder": "t1.0", "text": "6"}],
              "pairs": [{"a": 0, "b": 2, "decided_by": "oracle", "outcome": "a"},
                        {"a": 1, "b": 2, "decided_by": "oracle", "outcome": "a"}],
              "selected": [{"pair": 0, "chosen": 0, "rejected": 2}, {"pair": 1, "chosen": 1, "rejected": 2}]}
    other = {**record, "prompt_id": "q2"}  # the same texts under another prompt are another pair
    rows, dropped = drop_duplicate_pairs(dpo_rows([record, other], "judge", {"general": "pairwise_v1"}))
    assert dropped == 2 and [(r["prompt_id"], r["id"]) for r in rows] == [("q1", "q1#0>2"), ("q2", "q2#0>2")]
