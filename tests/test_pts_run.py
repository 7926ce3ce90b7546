"""run_pts.py end to end on a small arithmetic model trained here: shards, resume, datatrove tasks, export, DPO.

The model is trained in this module (about 15 s) rather than read from outputs/, so the tests own their
inputs. It is weak (p(success) around 0.1 on most questions), so the runs below widen the query filter
to [0.05, 0.95]; the pivots it then finds are real ones (typically the final answer digit of a correct
response) and pass the usual p_gap of 0.2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset

from phi4_recipes.configs import RecipeError, parse_recipe
from phi4_recipes.jsonl import jsonl_line, read_complete_jsonl
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.model_loading import configure_generation
from phi4_recipes.producers import shard_path, task_of
from phi4_recipes.pts import PTSConfig
from phi4_recipes.pts.options import PTSScriptArguments
from phi4_recipes.pts.runner import export as pts_export
from phi4_recipes.pts.runner.questions import Question, ResponseOracle, query_ids, read_questions
from phi4_recipes.pts.runner.records import QuestionRecord, check_question_record, read_question_records
from phi4_recipes.run_pts import main as run_pts
from phi4_recipes.tokenizer import train_tiny_tokenizer
from stage_runner import REPO, run_stage, script_env

NUM_QUESTIONS = 8
# One-step word problems a 2-layer model learns in 150 steps, so PTS finds questions in its p band (the
# built-in tiny data is now step-by-step, digit-level arithmetic, too hard for a model this small).
SIMPLE_ARITHMETIC = REPO / "tests/fixtures/pts/simple_arithmetic.jsonl"


def _train_small_arithmetic_model(folder: Path, one_head: bool = False) -> Path:
    """A 2-layer, 64-wide Phi-4 trained for 150 steps on simple one-step arithmetic conversations (one head of 64
    for tests/test_vllm_cpu.py: vLLM's CPU attention has no kernel for the default heads of 16)."""
    rows = [json.loads(line) for line in SIMPLE_ARITHMETIC.read_text().splitlines()]
    tokenizer = train_tiny_tokenizer([r["question"] + " " + r["solution"] for r in rows], vocab_size=400)
    torch.manual_seed(0)
    config = Phi4Config.from_preset("tiny", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                    num_hidden_layers=2, use_liger=False,
                                    **({"num_attention_heads": 1, "num_key_value_heads": 1} if one_head else {}))
    model = Phi4ForCausalLM(config)
    sequences = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=False) for r in rows]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    draws = torch.Generator().manual_seed(0)
    for _ in range(150):
        batch = [sequences[i] for i in torch.randint(len(sequences), (32,), generator=draws).tolist()]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = labels[row, : len(seq)] = torch.tensor(seq)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    configure_generation(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return _train_small_arithmetic_model(tmp_path_factory.mktemp("small_model"))


@pytest.fixture(scope="module")
def tokenizer(small_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(small_model)


@pytest.fixture(scope="module")
def questions_file(tmp_path_factory) -> Path:
    rows = [json.loads(line) for line in SIMPLE_ARITHMETIC.read_text().splitlines()]
    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:NUM_QUESTIONS]))
    return path


def pts_argv(model: Path, questions: Path, output_dir: Path, *extra: str) -> list[str]:
    """The tiny recipe, shrunk for a test: fewer and shorter rollouts, a wide query filter."""
    return ["recipes/tiny/pts.yaml", "--model_name_or_path", str(model), "--dataset_name", str(questions),
            "--output_dir", str(output_dir), "--max_questions", str(NUM_QUESTIONS),
            "--responses_per_question", "8", "--max_new_tokens", "40", "--p_min", "0.05", "--p_max", "0.95",
            "--min_trials", "8", "--max_trials", "32", "--confirm_max_trials", "48", "--pair_trials", "16",
            "--plot_max", "2", *extra]


def parse_pts(argv: list[str]) -> PTSScriptArguments:
    (args,) = parse_recipe(PTSScriptArguments, argv=argv)
    return args


def run_in_process(argv: list[str]) -> dict:
    cwd = os.getcwd()
    os.chdir(REPO)  # recipe paths are relative to the repository, as for a user
    try:
        return run_pts(parse_pts(argv))
    finally:
        os.chdir(cwd)


def read_shard(path: Path) -> list[QuestionRecord]:
    return [QuestionRecord.from_json(row) for row in read_complete_jsonl(path, check_question_record)[0]]


def shard_records(path: Path) -> list[dict]:
    """Records without their wall-clock timing, the one field that differs between identical runs."""
    return [{k: v for k, v in r.to_json().items() if k != "seconds"} for r in read_shard(path)]


@pytest.fixture(scope="module")
def full_run(small_model, questions_file, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("pts_full")
    run_in_process(pts_argv(small_model, questions_file, output_dir))
    return output_dir


def test_run_writes_one_line_per_question_pairs_plots_and_manifest(full_run, questions_file, tokenizer):
    records = shard_records(shard_path(full_run, 0, 1))
    # the typed record writes back exactly the line it was read from (old shards read, re-runs match)
    for line in shard_path(full_run, 0, 1).read_text(encoding="utf-8").splitlines(keepends=True):
        assert jsonl_line(QuestionRecord.from_json(json.loads(line)).to_json()) == line
    expected_ids = [json.loads(line)["id"] for line in questions_file.read_text().splitlines()]
    assert sorted(r["question_id"] for r in records) == sorted(expected_ids)
    assert {r["status"] for r in records} <= {"searched", "filtered", "no_response"}
    assert any(r["status"] == "searched" for r in records)

    pairs = [json.loads(line) for line in (full_run / "pairs.jsonl").read_text().splitlines()]
    assert pairs, "the test settings must yield at least one pair"
    by_id = {r["question_id"]: r for r in records}
    for pair in pairs:
        record = QuestionRecord.from_json(by_id[pair["question_id"]])
        result = next(s.result for s in record.responses if s.response_index == pair["response_index"])
        # The prompt is the chat-template query plus the searched response's own prefix, id for id.
        question = next(json.loads(line) for line in questions_file.read_text().splitlines()
                        if json.loads(line)["id"] == pair["question_id"])
        query = query_ids(tokenizer, Question(question["id"], question["question"], question["answer"], "math"))
        assert result.query_ids == query
        assert pair["prompt_ids"] == query + result.response_ids[: pair["position"]]
        pivot = next(p for p in result.pivots if p.position == pair["position"])
        pivot_side = pair["chosen_ids"] if pair["chosen_is_pivot"] else pair["rejected_ids"]
        assert pivot_side == [pivot.token_id] == [result.response_ids[pair["position"]]]
        assert len(pair["chosen_ids"]) == len(pair["rejected_ids"]) == 1
        assert pair["chosen_ids"] != pair["rejected_ids"]
        assert pair["p_chosen"] - pair["p_rejected"] >= result.config.p_gap
        assert pair["p_after"] == pivot.p_after and pair["seed"] == result.config.seed
        assert pair["prompt"] == tokenizer.decode(pair["prompt_ids"])
        assert pair["chosen"] == tokenizer.decode(pair["chosen_ids"])
        # the stop token was cut before the search, so it is never a side of a pair
        assert tokenizer.convert_tokens_to_ids("<|im_end|>") not in pair["chosen_ids"] + pair["rejected_ids"]
    keys = [(p["question_id"], p["response_index"], p["position"]) for p in pairs]
    assert keys == sorted(set(keys))

    plots = sorted((full_run / "plots").glob("*.png"))
    searched_responses = sum(s["result"]["status"] == "searched" for r in records for s in r["responses"])
    assert len(plots) == min(2, searched_responses)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)

    manifest = json.loads((full_run / "manifest.json").read_text())
    summary = manifest["summary"]
    assert summary["questions"] == NUM_QUESTIONS and summary["pairs"] == len(pairs)
    assert summary["searched"] == sum(r["status"] == "searched" for r in records)
    assert summary["pivots"] == sum(len(s["result"]["pivots"]) for r in records for s in r["responses"])
    assert summary["rollouts"] == sum(r["rollouts"] for r in records)
    assert manifest["stage"] == "pts" and manifest["inputs"][0]["rows"] == NUM_QUESTIONS


def test_killed_run_resumes_with_nothing_lost_or_duplicated(full_run, small_model, questions_file, tmp_path):
    output_dir = tmp_path / "pts"
    argv = pts_argv(small_model, questions_file, output_dir)
    shard = shard_path(output_dir, 0, 1)
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([sys.executable, "src/phi4_recipes/run_pts.py", *argv], cwd=REPO,
                                   env=script_env(), stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 240
        while not (shard.exists() and b"\n" in shard.read_bytes()):
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "no question finished within 240 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
    done_when_killed = len(read_shard(shard))
    assert 1 <= done_when_killed < NUM_QUESTIONS, "the run must be killed part-way"

    run_in_process(argv)
    assert shard_records(shard) == shard_records(shard_path(full_run, 0, 1))
    assert (output_dir / "pairs.jsonl").read_bytes() == (full_run / "pairs.jsonl").read_bytes()


def test_unfinished_last_line_is_dropped_on_resume(full_run, small_model, questions_file, tmp_path):
    output_dir = tmp_path / "pts"
    output_dir.mkdir()
    shard = shard_path(output_dir, 0, 1)
    complete = shard_path(full_run, 0, 1).read_bytes()
    shard.write_bytes(complete[:-25])  # what a writer killed mid-line leaves behind
    assert len(read_shard(shard)) == NUM_QUESTIONS - 1

    run_in_process(pts_argv(small_model, questions_file, output_dir))
    assert shard.read_bytes().endswith(b"\n")
    assert shard_records(shard) == shard_records(shard_path(full_run, 0, 1))


def test_a_damaged_line_before_the_last_is_an_error_naming_it(tmp_path):
    shard = tmp_path / "shard-00000-of-00001.jsonl"
    record = json.dumps(QuestionRecord("a", "no_response", None, [], [], 0, "m", "m", 0, 0).to_json())
    shard.write_text(f'{record}\n{{"question_id": \n{record}\n')
    with pytest.raises(ValueError, match=r"shard-00000-of-00001.jsonl, line 2"):
        read_question_records(tmp_path)
    shard.write_text(f'{record}\n{{"question_id": "b"}}\n')
    with pytest.raises(ValueError, match=r"line 2: not a PTS question record \(no 'status'"):
        read_question_records(tmp_path)


def test_two_tasks_partition_the_questions_and_merge_to_the_full_run(full_run, small_model, questions_file,
                                                                     tmp_path):
    output_dir = tmp_path / "pts"
    run_in_process(pts_argv(small_model, questions_file, output_dir, "--tasks", "2"))
    ids = [json.loads(line)["id"] for line in questions_file.read_text().splitlines()]
    shard_ids = [[r["question_id"] for r in shard_records(shard_path(output_dir, k, 2))] for k in (0, 1)]
    assert set(shard_ids[0]).isdisjoint(shard_ids[1]) and sorted(shard_ids[0] + shard_ids[1]) == sorted(ids)
    assert all(task_of(q, 2) == k for k in (0, 1) for q in shard_ids[k])
    assert shard_ids[0] and shard_ids[1], "eight ids should not all hash to one shard"
    # Seeds follow question ids, so sharded records equal the unsharded run's, and the export merges both.
    full = {r["question_id"]: r for r in shard_records(shard_path(full_run, 0, 1))}
    for k in (0, 1):
        for record in shard_records(shard_path(output_dir, k, 2)):
            assert record == full[record["question_id"]]
    assert (output_dir / "pairs.jsonl").read_bytes() == (full_run / "pairs.jsonl").read_bytes()
    assert (output_dir / "manifest.json").is_file()
    assert sorted(p.name for p in (output_dir / "logs" / "completions").iterdir()) == ["00000", "00001"]


def test_shard_assignment_is_stable_and_partitions():
    ids = [f"q-{i}" for i in range(200)]
    for n in (1, 2, 5):
        counts = [sum(task_of(q, n) == k for q in ids) for k in range(n)]
        assert sum(counts) == len(ids) and min(counts) > 0
    assert [task_of(q, 4) for q in ("a", "b", "c")] == [task_of(q, 4) for q in ("a", "b", "c")]
    # a fixed value: assignment must not change between Python processes or releases
    assert task_of("arith-train-73c2e776a5", 1000) == int.from_bytes(
        __import__("hashlib").blake2b(b"arith-train-73c2e776a5", digest_size=8).digest(), "big") % 1000


def test_oracle_never_sees_the_query(small_model, tokenizer, tmp_path):
    # The question states the answer; responses are cut to 3 tokens, too short to state any answer.
    # An oracle that read query + response would find "The answer is 97" and count every rollout correct.
    questions = tmp_path / "leak.jsonl"
    questions.write_text(json.dumps({"id": "leak", "question": "Kai has 40 apples and gets 57 more. "
                                     "The answer is 97.", "answer": "97"}) + "\n")
    output_dir = tmp_path / "pts"
    run_in_process(pts_argv(small_model, questions, output_dir, "--max_new_tokens", "3", "--p_min", "0.0",
                            "--p_max", "1.0", "--responses_per_question", "4"))
    [record] = shard_records(shard_path(output_dir, 0, 1))
    assert record["sampled_correct"] == [False] * 4
    # Every response was cut at max_new_tokens, so none is searched (a cut response has no final answer).
    assert record["status"] == "no_response" and record["responses"] == [] and record["p_query"] is None

    oracle = ResponseOracle(tokenizer, Question("leak", "The answer is 97.", "97", "math"))
    answer_ids = tokenizer("The answer is 97.", add_special_tokens=False)["input_ids"]
    assert oracle(answer_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")]) is True
    assert oracle(answer_ids[:3]) is False


def test_standalone_export_rebuilds_the_same_pairs(full_run, tmp_path):
    copy = tmp_path / "pts"
    copy.mkdir()
    shutil.copy(shard_path(full_run, 0, 1), copy)
    summary = pts_export.main([str(copy)])  # tokenizer: the one recorded in the shard lines
    assert (copy / "pairs.jsonl").read_bytes() == (full_run / "pairs.jsonl").read_bytes()
    assert summary["questions"] == NUM_QUESTIONS


def test_run_dpo_trains_on_the_exported_pairs(full_run, small_model, tmp_path):
    pairs = (full_run / "pairs.jsonl").read_text().splitlines()
    output_dir = tmp_path / "dpo"
    run_stage("run_dpo.py", "recipes/tiny/dpo_pts.yaml", "--model_name_or_path", small_model,
              "--dataset_name", full_run / "pairs.jsonl", "--output_dir", output_dir, "--max_steps", "2",
              "--per_device_train_batch_size", "2", "--logging_steps", "1")
    manifest = json.loads((output_dir / "manifest.json").read_text())
    assert manifest["pairs"] == {"kept": len(pairs), "dropped_too_long": 0, "exact_ids": len(pairs)}
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and any("loss" in e for e in state["log_history"])


def test_help_lists_every_search_knob_with_its_help_text(capsys):
    with pytest.raises(SystemExit):
        parse_recipe(PTSScriptArguments, argv=["--help"])
    squeezed = "".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere between words
    for knob in dataclasses.fields(PTSConfig):
        if knob.name == "seed":  # the run's seed, with its own help (below)
            continue
        assert f"--{knob.name}" in squeezed
        assert "".join(knob.metadata["help"].split()) in squeezed, knob.name
    assert "".join(PTSScriptArguments.__dataclass_fields__["seed"].metadata["help"].split()) in squeezed


def test_the_manifest_records_the_seeds_the_searches_used(full_run):
    """The run's seed is the one seed a recipe sets; each question's search seed derives from it and the
    question id, and the manifest names no other seed (it once recorded a search seed no search used)."""
    from phi4_recipes.pts.runner.question_search import question_seed, search_question

    manifest = json.loads((full_run / "manifest.json").read_text())
    run_seed = manifest["seed"]
    assert run_seed == manifest["resolved_config"]["script_args"]["seed"] == 42

    def seeds(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from ([(path + (key,), value)] if key == "seed" else seeds(value, path + (key,)))
    assert list(seeds(manifest["resolved_config"])) == [(("script_args", "seed"), run_seed)]
    searched = 0
    for record in read_shard(shard_path(full_run, 0, 1)):
        assert record.run_seed == run_seed and record.seed == question_seed(run_seed, record.question_id)
        for response in record.responses:
            assert response.result.config.seed == record.seed
            searched += 1
    assert searched > 0
    # A config carrying a seed of its own is refused rather than silently given the question's.
    with pytest.raises(TypeError, match="derives each question's seed from run_seed"):
        search_question("q", [1], None, None, search=PTSConfig(seed=3), run_seed=run_seed, responses_per_question=1,
                        search_all_responses=False, stop_ids=[], model="m", tokenizer="t", settings={})


@pytest.mark.parametrize("recipe", ["recipes/tiny/pts.yaml", "recipes/pts.yaml", "recipes/colab/pts.yaml"])
def test_pts_recipes_parse(recipe, monkeypatch):
    monkeypatch.chdir(REPO)
    args = parse_pts([recipe])
    assert args.output_dir.startswith("outputs/") and (args.p_gap, args.p_min, args.p_max) == (0.2, 0.2, 0.8)
    assert (args.temperature, args.top_p) == (1.0, 1.0)
    dpo_recipe = {"recipes/tiny/pts.yaml": "recipes/tiny/dpo_pts.yaml", "recipes/pts.yaml": "recipes/dpo_pts.yaml",
                  "recipes/colab/pts.yaml": "recipes/colab/dpo_pts.yaml"}[recipe]
    # The DPO recipe reads what this run exports, as TRL's `datasets:` mixture (so `trl dpo` runs it too).
    dpo = yaml.safe_load((REPO / dpo_recipe).read_text())
    assert dpo["datasets"] == [{"path": "json", "data_files": f"{args.output_dir}/pairs.jsonl"}]


def test_recipe_errors_name_the_key_and_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model_name_or_path: m\ndataset_name: d\noutput_dir: o\np_gapp: 0.1\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: unknown key 'p_gapp' \(did you mean 'p_gap'\?\)"):
        parse_pts([str(recipe)])
    recipe.write_text("model_name_or_path: m\ndataset_name: d\noutput_dir: o\np_min: 0.9\np_max: 0.1\n")
    with pytest.raises(RecipeError, match="bad.yaml.*p_min <= p_max"):
        parse_pts([str(recipe)])
    recipe.write_text("model_name_or_path: m\ndataset_name: d\n")
    with pytest.raises(RecipeError, match="bad.yaml.*key 'output_dir' is required"):
        parse_pts([str(recipe)])


def test_bad_question_rows_name_the_dataset_row_and_column():
    rows = [{"id": "a", "question": "1 + 1?", "answer": "2"}, {"id": "a", "question": "2 + 2?", "answer": "4"}]
    kwargs = dict(id_field="id", question_field="question", answer_field="answer", oracle="math")
    with pytest.raises(ValueError, match=r"dataset qs.jsonl, row 1 \(id 'a'\): id repeats row 0"):
        read_questions(Dataset.from_list(rows), "qs.jsonl", **kwargs)
    with pytest.raises(ValueError, match=r"dataset qs.jsonl: missing column\(s\) \['answer'\]"):
        read_questions(Dataset.from_list([{"id": "a", "question": "?"}]), "qs.jsonl", **kwargs)
    rows = [{"id": "a", "question": "1 + 1?", "answer": "2", "kind": "maths"}]
    with pytest.raises(ValueError, match=r"row 0 \(id 'a'\): oracle kind 'maths'"):
        read_questions(Dataset.from_list(rows), "qs.jsonl", **{**kwargs, "oracle_field": "kind"})
    rows = [{"id": "a", "question": " ", "answer": "2"}]
    with pytest.raises(ValueError, match="row 0 .*'question' is empty"):
        read_questions(Dataset.from_list(rows), "qs.jsonl", **kwargs)


def test_resuming_with_other_settings_is_refused(full_run, small_model, questions_file, tmp_path):
    output_dir = tmp_path / "pts"
    output_dir.mkdir()
    shutil.copy(shard_path(full_run, 0, 1), output_dir)
    shutil.copy(full_run / "settings.json", output_dir)
    with pytest.raises(RecipeError, match=r"settings.json: .* other settings \(p_gap: 0.2 -> 0.3\)"):
        run_in_process(pts_argv(small_model, questions_file, output_dir, "--p_gap", "0.3"))
