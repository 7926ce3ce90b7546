"""Paired differences between two evaluated checkpoints (evaluation/paired.py): per-item scores read from what
run_eval writes, and one two-standard-error rule behind every verdict, in a table cell or in words."""

from pathlib import Path

import pytest

from phi4_recipes.evaluation.lm_eval_runner import BenchmarkRun
from phi4_recipes.evaluation.options import EvalArguments
from phi4_recipes.evaluation.paired import item_scores, paired_difference, significance_words, verdict
from phi4_recipes.evaluation.registry import load_registry
from phi4_recipes.evaluation.results import write_results


def _evaluated(folder: Path, run_name: str, correct: list[int]) -> Path:
    """What run_eval writes for tiny_arithmetic with the given per-item scores, through its own writer."""
    bench = load_registry()["tiny_arithmetic"]
    task = bench.task
    metric = bench.metric.split(",")[0]
    # The per-sample keys lm-eval writes: the registry's metric and, here, a distractor that must not be read.
    samples = [{"doc_id": i, "filter": "none", metric: float(c), "exact_match": 1.0 - c} for i, c in enumerate(correct)]
    output = {"results": {task: {bench.metric: sum(correct) / len(correct)}}, "versions": {task: 1.0},
              "config": {"model": "hf"}, "samples": {task: samples}}
    run = BenchmarkRun(benchmark=bench, score=sum(correct) / len(correct), stderr=None, num_fewshot=0,
                       num_samples=len(correct), gen_kwargs={}, output=output)
    args = EvalArguments(model_name_or_path="tiny", benchmarks=["tiny_arithmetic"], output_dir=str(folder),
                         run_name=run_name)
    return write_results(args, [run])


def test_item_scores_read_the_samples_of_the_run_that_scored_the_benchmark(tmp_path):
    # A run name other than "eval" (the recipe's stem, or --run_name) keeps its samples under its own name.
    _evaluated(tmp_path / "sft", "tiny", [1, 0, 1, 1])
    (tmp_path / "sft" / "manifest.json").write_text("{}")  # other JSON beside the result is not a result
    assert item_scores(tmp_path / "sft", "tiny_arithmetic") == {"0": 1.0, "1": 0.0, "2": 1.0, "3": 1.0}
    with pytest.raises(ValueError, match=r"expected one run_eval result scoring 'tiny_choice', found none"):
        item_scores(tmp_path / "sft", "tiny_choice")
    _evaluated(tmp_path / "sft", "again", [0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"found .*again\.json, .*tiny\.json"):
        item_scores(tmp_path / "sft", "tiny_arithmetic")


def test_table_cell_and_sentence_apply_the_same_rule():
    one_item = paired_difference({"0": [0.0]}, {"0": [1.0]})  # no spread to measure: not a finding
    assert one_item["items"] == 1
    assert verdict(one_item) == "not significant"
    assert "not significantly different from" in significance_words("a", "b", "x", one_item)
    every_item = paired_difference({str(i): [0.0] for i in range(5)}, {str(i): [1.0] for i in range(5)})
    assert every_item["stderr"] == 0
    assert verdict(every_item) == "significantly better"
    assert "significantly better than" in significance_words("a", "b", "x", every_item)
    # exactly two standard errors counts as significant in both forms
    edge = {"items": 4, "seeds": 1, "mean": -0.2, "stderr": 0.1, "per_seed": [-0.2]}
    assert verdict(edge) == "significantly worse"
    assert "significantly worse than" in significance_words("a", "b", "x", edge)
