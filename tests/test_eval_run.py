"""End to end: a tiny random-init checkpoint evaluated on the local tasks through lm-eval and the chat template."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from phi4_recipes.configs import parse_recipe
from phi4_recipes.data.tiny import tokenizer_corpus
from phi4_recipes.evaluation.options import EvalArguments
from phi4_recipes.hub import card_eval_results
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.run_eval import main as run_eval
from phi4_recipes.tokenizer import train_tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "eval"
SYSTEM_PROMPT = "You are a careful assistant."
TINY_BENCHMARKS = ["tiny_arithmetic", "tiny_choice", "tiny_ifeval"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_ckpt")
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(), vocab_size=1024)
    torch.manual_seed(0)
    model = Phi4ForCausalLM(Phi4Config.from_preset("tiny", vocab_size=len(tokenizer)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # As a training stage leaves it, so run_eval puts the scores into the checkpoint's card.
    (folder / "manifest.json").write_text(json.dumps({"stage": "sft", "seed": 0}), encoding="utf-8")
    return folder


def parse_eval_recipe(argv: list[str]) -> EvalArguments:
    (args,) = parse_recipe(EvalArguments, argv=argv)
    return args


def _args(checkpoint: Path, run_name: str, *extra: str) -> list[str]:
    return [str(REPO / "recipes" / "tiny" / "eval.yaml"), "--model_name_or_path", str(checkpoint), "--limit", "5",
            "--max_gen_toks", "12", "--run_name", run_name, "--system_prompt", SYSTEM_PROMPT, *extra]


def _samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def two_runs(checkpoint) -> tuple[dict, dict]:
    run_eval(parse_eval_recipe(_args(checkpoint, "first")))
    # lm-eval spends a few seconds per benchmark on environment info, so the repeat covers one benchmark.
    run_eval(parse_eval_recipe(_args(checkpoint, "second", "--benchmarks", "tiny_arithmetic")))
    load = lambda name: json.loads((checkpoint / "eval" / f"{name}.json").read_text(encoding="utf-8"))  # noqa: E731
    return load("first"), load("second")


def test_result_json_is_written_beside_the_checkpoint(checkpoint, two_runs):
    first, _ = two_runs
    assert list(first["benchmarks"]) == TINY_BENCHMARKS
    for bench in first["benchmarks"].values():
        assert 0.0 <= bench["score"] <= 1.0 and bench["stderr"] is not None
        assert bench["num_fewshot"] == 0 and bench["num_samples"] == 5
        assert bench["gen_kwargs"]["max_gen_toks"] == 12 and bench["gen_kwargs"]["do_sample"] is False
        assert Path(bench["samples_file"]).parent == checkpoint / "eval" / "first_samples"
    assert first["versions"]["lm_eval"] == "0.4.13" and "transformers" in first["versions"]
    assert first["model"]["path"] == str(checkpoint.resolve()) and len(first["model"]["weights_sha256"]) == 64
    assert first["settings"]["system_prompt"] == SYSTEM_PROMPT and first["settings"]["seed"] == 1234
    assert "git_commit" in first


def test_scores_go_into_the_checkpoints_model_card(checkpoint, two_runs):
    first, second = two_runs
    card = (checkpoint / "README.md").read_text(encoding="utf-8")
    listed = card_eval_results(checkpoint / "README.md")
    assert list(listed) == TINY_BENCHMARKS  # both runs; the second one's tiny_arithmetic replaces the first's
    for name, bench in first["benchmarks"].items():
        assert listed[name][bench["metric"]] == (second if name in second["benchmarks"] else first)[
            "benchmarks"][name]["score"]
        assert f"| {name} | {bench['metric']} |" in card


def test_scores_go_into_the_card_when_results_are_written_elsewhere(checkpoint, tmp_path):
    # `make tiny` writes each stage's evaluation to `<run>/eval_<stage>/`, outside the checkpoint folder.
    copy = shutil.copytree(checkpoint, tmp_path / "sft", ignore=shutil.ignore_patterns("eval", "README.md"))
    path = run_eval(parse_eval_recipe([*_args(copy, "eval", "--benchmarks", "tiny_arithmetic"),
                                       "--output_dir", str(tmp_path / "eval_sft")]))
    assert path.parent == tmp_path / "eval_sft"
    bench = json.loads(path.read_text(encoding="utf-8"))["benchmarks"]["tiny_arithmetic"]
    card = ModelCard.load(copy / "README.md")
    [result] = card.data.eval_results  # the model-index the Hub shows
    assert (result.dataset_type, result.metric_type, result.metric_value) == (
        "tiny_arithmetic", bench["metric"], bench["score"])
    listed = card_eval_results(copy / "README.md")["tiny_arithmetic"]
    assert listed[f"{bench['metric']}_stderr"] == bench["stderr"] is not None and listed["num_samples"] == 5


def test_prompts_go_through_the_chat_template(two_runs):
    first, _ = two_runs
    for bench in first["benchmarks"].values():
        samples = _samples(Path(bench["samples_file"]))
        assert len(samples) == 5
        for sample in samples:
            prompt = sample["arguments"][0][0]
            assert prompt.startswith(f"<|im_start|>system<|im_sep|>{SYSTEM_PROMPT}<|im_end|><|im_start|>user<|im_sep|>")
            assert prompt.endswith("<|im_end|><|im_start|>assistant<|im_sep|>")
            assert isinstance(sample["resps"][0][0], str)


def test_two_runs_give_identical_scores_and_outputs(two_runs):
    first, second = two_runs
    assert list(second["benchmarks"]) == ["tiny_arithmetic"]
    for name in second["benchmarks"]:
        a, b = first["benchmarks"][name], second["benchmarks"][name]
        assert (a["score"], a["stderr"]) == (b["score"], b["stderr"])
        responses = [[s["resps"] for s in _samples(Path(x["samples_file"]))] for x in (a, b)]
        assert responses[0] == responses[1]


def test_scores_match_the_per_sample_grades(two_runs):
    first, _ = two_runs
    bench = first["benchmarks"]["tiny_arithmetic"]
    grades = [s["accuracy"] for s in _samples(Path(bench["samples_file"]))]
    assert bench["score"] == pytest.approx(sum(grades) / len(grades))


@pytest.mark.sandbox
def test_humaneval_runs_from_a_local_copy_in_the_sandbox(checkpoint, tmp_path):
    # A task folder that shadows phi4_humaneval with the same YAML but a local dataset: the real task
    # config, lm-eval loading code and sandboxed grading run, only the data source differs from the Hub.
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shipped = REPO / "eval" / "tasks" / "phi4_humaneval" / "phi4_humaneval.yaml"
    (tasks / "phi4_humaneval_local.yaml").write_text(
        f"include: {shipped}\ntask: phi4_humaneval\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {FIXTURES / 'humaneval_local.jsonl'}\n", encoding="utf-8")
    recipe = parse_eval_recipe(["--model_name_or_path", str(checkpoint), "--benchmarks", "humaneval", "--task_paths",
                                str(tasks), "--max_gen_toks", "8", "--device", "cpu", "--output_dir",
                                str(tmp_path / "out"), "--run_name", "he"])
    record = json.loads(run_eval(recipe).read_text(encoding="utf-8"))
    bench = record["benchmarks"]["humaneval"]
    samples = _samples(Path(bench["samples_file"]))
    assert [s["doc"]["task_id"] for s in samples] == ["Local/0", "Local/1", "Local/2"]
    assert all("<|im_start|>user<|im_sep|>Implement the Python function" in s["arguments"][0][0] for s in samples)
    # A random tiny model writes no working code; every program still ran and failed in the sandbox.
    assert bench["score"] == 0.0 and [s["pass@1"] for s in samples] == [0, 0, 0]
