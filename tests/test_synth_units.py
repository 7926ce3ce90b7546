"""Synth building blocks: the plurality thresholds, model-output readers, input ids, dedup at export,
settings guard, versioned prompts, recipe options."""

from __future__ import annotations

import pytest

from phi4_recipes.configs import parse_recipe
from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.producers import check_settings
from phi4_recipes.recipe_checks import RecipeError
from phi4_recipes.synth import BadModelOutput, plurality_vote
from phi4_recipes.synth.export import export_run
from phi4_recipes.synth.inputs import input_rows
from phi4_recipes.synth.model_output import final_answer, parse_json, parse_scores
from phi4_recipes.synth.options import SynthScriptArguments
from phi4_recipes.synth.prompt_files import load_prompt


@pytest.mark.parametrize("answers, verdict, label, agreement", [
    (["4", "4", "4", "4"], "all_agree", "4", 1.0),           # too easy
    (["4", "5", "6", "7"], "no_plurality", None, 0.25),      # no answer reaches min_agreement
    (["4", "4", "5", "5"], "no_plurality", None, 0.5),       # a tie is no plurality
    ([None, None, None, None], "no_plurality", None, 0.0),   # nothing answer-like
    (["4", "4", "4", "5"], "kept", "4", 0.75),
    (["4", "4", None, "5"], "kept", "4", 0.5),              # a missing answer counts in k, for no one
])
def test_plurality_thresholds(answers, verdict, label, agreement):
    vote = plurality_vote(answers, min_agreement=0.5)
    assert (vote.verdict, vote.label, vote.agreement) == (verdict, label, agreement)


def test_unanimous_kept_when_asked_and_min_agreement_applies():
    assert plurality_vote(["4"] * 3, 0.5, drop_unanimous=False).verdict == "kept"
    assert plurality_vote(["4", "4", "5", "6", "7"], 0.5).verdict == "no_plurality"  # 0.4 < 0.5


def test_model_output_readers_raise_bad_model_output():
    assert parse_json('Sure! ```json\n{"a": 1}\n```', "x") == {"a": 1}
    assert parse_json('[{"q": 1}] and {"b": 2}', "x", list) == [{"q": 1}]
    assert parse_scores('{"accuracy": 4, "clarity": 5}', "c", ("accuracy", "clarity"), 1, 5) == {"accuracy": 4.0,
                                                                                                 "clarity": 5.0}
    for text in ("no json here", '{"accuracy": 9, "clarity": 5}', '{"accuracy": "4", "clarity": 5}', '{"clarity": 1}'):
        with pytest.raises(BadModelOutput, match="unparseable_critique"):
            parse_scores(text, "critique", ("accuracy", "clarity"), 1, 5)
    assert final_answer("so 3 + 4 = 7. The answer is 7.") == final_answer("The answer is 7") == "7"
    assert final_answer("no numbers") is None


def test_input_rows_report_missing_and_repeated_ids():
    rows = input_rows([{"id": "a"}, {"id": None}, {"id": "a"}, {"id": "b"}], "id", max_rows=None)
    assert [(r.id, r.problem) for r in rows] == [("a", None), ("row-1", "missing_field:id"),
                                                 ("a@row-2", "duplicate_id"), ("b", None)]
    assert [r.id for r in input_rows([{"x": 1}, {"x": 2}], None, max_rows=1)] == ["row-0"]


def test_export_removes_exact_and_near_duplicates_and_counts_them(tmp_path):
    long = "The quick brown fox jumps over the lazy dog while the farmer counts eleven sheep in the field today"

    def result(i, text):
        row = {"id": f"s{i}/rewrite/0", "text": text, "messages": None,
               "provenance": {"workflow": "rewrite", "source_id": f"s{i}"}}
        return {"id": f"s{i}", "rows": [row], "drops": [], "bad": None}

    write_jsonl(tmp_path / "shard-00000-of-00001.jsonl", [
        result(0, long), result(1, long.upper() + "!"), result(2, long.replace("today", "now")),
        result(3, "Something else entirely, with other words in it."),
        {"id": "s4", "rows": [], "drops": [], "bad": {"reason": "missing_field:text", "detail": ""}}])
    report = export_run(tmp_path, "text")
    assert report["kept_rows"] == 2 and report["bad_rows_by_reason"] == {"missing_field:text": 1}
    assert report["dropped_by_reason"] == {"exact_duplicate": 1, "near_duplicate": 1}
    assert (tmp_path / "data.jsonl").read_text().count("\n") == 2
    assert '"id":"s4"' in (tmp_path / "bad_rows.jsonl").read_text()


def test_changed_settings_refused_on_resume(tmp_path):
    check_settings(tmp_path, {"seed": 1})
    check_settings(tmp_path, {"seed": 1})
    with pytest.raises(RecipeError, match=r"settings.json: .*other settings \(seed: 1 -> 2\)"):
        check_settings(tmp_path, {"seed": 2})


def test_prompts_are_versioned_files():
    prompt = load_prompt("critique", "v1")
    assert prompt.tag == "critique@v1" and "$draft" in prompt.template
    assert "{" in prompt.render(seed="s", draft="d")  # JSON braces need no escaping
    with pytest.raises(RecipeError, match="no synth prompt 'critique' in version 'v9'"):
        load_prompt("critique", "v9")


def test_workflow_options_checked_against_the_workflow(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("workflow: plurality\ndataset_name: d.jsonl\noutput_dir: o\nmodel_name_or_path: m\n"
                      "workflow_options: {num_answer: 5}\n")
    with pytest.raises(RecipeError, match="num_answer"):
        parse_recipe(SynthScriptArguments, argv=[str(recipe)])
    recipe.write_text("workflow: validation\ndataset_name: d.jsonl\noutput_dir: o\n")
    (args,) = parse_recipe(SynthScriptArguments, argv=[str(recipe)])
    assert not args.needs_model and args.options.oracle == "math"
    with pytest.raises(RecipeError, match="model_name_or_path"):
        parse_recipe(SynthScriptArguments, argv=[str(recipe), "--workflow", "rewrite"])
