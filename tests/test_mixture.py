import json

import pytest
import yaml

from phi4_recipes.data.mixture import MixtureBuilder, MixtureError, load_mixture
from phi4_recipes.model_loading import tiny_tokenizer


def _write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


@pytest.fixture
def sources(tmp_path):
    short = _write_jsonl(tmp_path / "short.jsonl", [f"Ava has {i} apples." for i in range(40)])
    prose = _write_jsonl(tmp_path / "prose.jsonl", ["Ben counts marbles in the park. " * 3] * 20)
    long = _write_jsonl(tmp_path / "long.jsonl", ["Cleo sorts cards at home. " * n for n in (10, 40, 80, 160)])
    return {"short": short, "prose": prose, "long": long}


def _mixture(tmp_path, body) -> str:
    path = tmp_path / "mixture.yaml"
    path.write_text(yaml.safe_dump({"phases": body}))
    return str(path)


def test_plan_reports_tokens_and_epochs(tmp_path, sources):
    tok = tiny_tokenizer()
    path = _mixture(tmp_path, {"pretrain": {"token_budget": 3000, "sources": [
        {"name": "short", "path": sources["short"], "weight": 0.6},
        {"name": "prose", "path": sources["prose"], "weight": 0.4},
    ]}})
    builder = MixtureBuilder(load_mixture(path), tok, seed=0)
    plan = builder.plan("pretrain")
    available = {s.name: s.available_tokens for s in plan.sources}
    expected_short = sum(len(tok(f"Ava has {i} apples.", add_special_tokens=False)["input_ids"]) for i in range(40))
    assert available["short"] == expected_short
    by_name = {s.name: s for s in plan.sources}
    assert by_name["short"].planned_tokens == 1800 and by_name["prose"].planned_tokens == 1200
    assert by_name["short"].epochs == pytest.approx(1800 / expected_short)
    built = builder.build("pretrain")
    counts = {"short": 0, "prose": 0}
    for row in built:
        counts[row["source"]] += len(tok(row["text"], add_special_tokens=False)["input_ids"])
    # Sampling whole documents overshoots each share by less than one document.
    assert 1800 <= counts["short"] < 1800 + 20 and 1200 <= counts["prose"] < 1200 + 60
    assert "short" in plan.table() and "epochs" in plan.table()


def test_epoch_cap_refuses_plan(tmp_path, sources):
    path = _mixture(tmp_path, {"pretrain": {"token_budget": 100_000, "sources": [
        {"name": "short", "path": sources["short"], "weight": 1.0, "max_epochs": 3},
    ]}})
    with pytest.raises(MixtureError, match=r"'short' needs [\d.]+ epochs \(cap 3\)"):
        MixtureBuilder(load_mixture(path), tiny_tokenizer()).plan("pretrain")


def test_midtrain_phase_recalls_pretrain_and_selects_long_documents(tmp_path, sources):
    tok = tiny_tokenizer()
    lengths = [len(tok("Cleo sorts cards at home. " * n, add_special_tokens=False)["input_ids"])
               for n in (10, 40, 80, 160)]
    threshold, upweight_from = lengths[0] + 1, lengths[2]
    path = _mixture(tmp_path, {
        "pretrain": {"token_budget": 2000, "sources": [{"name": "short", "path": sources["short"], "weight": 1.0}]},
        "midtrain": {"token_budget": 4000, "sources": [
            {"name": "long", "path": sources["long"], "weight": 0.3, "min_tokens": threshold,
             "upweight_min_tokens": upweight_from, "upweight": 2},
            {"name": "recall", "from_phase": "pretrain", "weight": 0.7},
        ]},
    })
    builder = MixtureBuilder(load_mixture(path), tok, seed=0)
    plan = {s.name: s for s in builder.plan("midtrain").sources}
    # The shortest document is filtered out; the two longest count twice.
    assert plan["long"].available_tokens == lengths[1] + 2 * lengths[2] + 2 * lengths[3]
    assert plan["recall"].planned_tokens == 2800
    built = builder.build("midtrain")
    assert set(built["source"]) == {"long", "recall"}
    pretrain_texts = set(builder.build("pretrain")["text"])
    assert all(t in pretrain_texts for t, s in zip(built["text"], built["source"]) if s == "recall")


@pytest.mark.parametrize("body, message", [
    ({"p": {"token_budget": 10, "sources": [{"name": "a", "path": "x.jsonl", "weight": 0.5}]}}, "sum to 0.5"),
    ({"p": {"token_budget": 10, "sources": [{"name": "a", "path": "x.jsonl", "weight": 1, "wieght": 1}]}},
     r"sources\[0\]: unknown key 'wieght' \(did you mean 'weight'\?\)"),
    ({"p": {"token_budget": 10, "sources": [{"name": "a", "from_phase": "q", "weight": 1}]}}, "unknown phase 'q'"),
])
def test_bad_mixture_files_name_the_problem(tmp_path, body, message):
    path = _mixture(tmp_path, body)
    with pytest.raises(MixtureError, match=message):
        load_mixture(path)


def test_missing_text_column_names_dataset_and_column(tmp_path):
    data = tmp_path / "notext.jsonl"
    data.write_text('{"body": "x"}\n')
    path = _mixture(tmp_path, {"p": {"token_budget": 10, "sources": [{"name": "a", "path": str(data), "weight": 1}]}})
    with pytest.raises(ValueError, match=r"notext\.jsonl.*missing column\(s\) \['text'\]"):
        MixtureBuilder(load_mixture(path), tiny_tokenizer()).plan("p")
