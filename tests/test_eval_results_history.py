"""A second run_eval under the same run name never loses the first one's scores (issue 13, section 3)."""

import json

from phi4_recipes.evaluation.results import SCHEMA, carry_forward, read_results


def _record(created, **scores):
    return {"schema": SCHEMA, "run_name": "eval", "created": created,
            "benchmarks": {name: {"metric": "acc,none", "score": score, "stderr": 0.01} for name, score in scores.items()}}


def test_rerun_with_fewer_benchmarks_keeps_earlier_scores_and_archives_the_run(tmp_path):
    first = _record("2026-12-01T09:00:00+00:00", tiny_arithmetic=0.10, tiny_choice=0.30)
    (tmp_path / "eval.json").write_text(json.dumps(first))
    second = carry_forward(read_results(tmp_path / "eval.json"), _record("2026-12-01T10:00:00+00:00",
                                                                          tiny_arithmetic=0.25), tmp_path / "history")
    assert second["benchmarks"]["tiny_arithmetic"]["score"] == 0.25  # the latest score wins
    assert second["benchmarks"]["tiny_choice"]["score"] == 0.30  # the one not rerun is carried forward
    assert second["benchmarks"]["tiny_choice"]["from_run"] == "2026-12-01T09:00:00+00:00"
    assert "from_run" not in second["benchmarks"]["tiny_arithmetic"]
    (archived,) = (tmp_path / "history").glob("*.json")
    assert json.loads(archived.read_text()) == first and second["history"] == [str(archived)]


def test_a_third_run_keeps_the_origin_of_carried_scores(tmp_path):
    first = _record("t1", a=0.1, b=0.2)
    second = carry_forward(first, _record("t2", a=0.3), tmp_path / "history")
    third = carry_forward(second, _record("t3", a=0.4), tmp_path / "history")
    assert third["benchmarks"]["b"]["from_run"] == "t1" and third["benchmarks"]["a"]["score"] == 0.4
    assert len(third["history"]) == 2
