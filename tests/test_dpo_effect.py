"""bench/dpo_effect.py's data for each arm and its choice of settings (the runs themselves are the bench's job).

The arms are only comparable if their data is built as the issue asks: the negative control keeps PTS's prefixes and
tokens and loses only the direction, the full-response pairs put a correct answer above an incorrect one, rejection
sampling keeps only correct answers, and the questions kept for held-out margins never reach training.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import dpo_effect  # noqa: E402

pytest_plugins = ["generation_fixtures"]  # lora_adapter, for the LoRA merge


def _pts_pair(question: str, position: int) -> dict:
    return {"question_id": question, "position": position, "prompt": f"<|im_start|>user {question}<|im_sep|>1",
            "chosen": " 4", "rejected": " 5", "prompt_ids": [1, 2, position], "chosen_ids": [40], "rejected_ids": [50]}


def _work(tmp_path: Path, questions: list[str]) -> Path:
    (tmp_path / "pts").mkdir()
    pairs = [_pts_pair(q, k) for q in questions for k in range(3)]
    (tmp_path / "pts" / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return tmp_path


def test_each_arm_gets_its_own_data_and_margin_questions_stay_out_of_training(tmp_path):
    questions = [f"q{i}" for i in range(60)]
    work = _work(tmp_path, questions)
    samples = [{"id": q, "question": f"What is {q}?", "answer": "7",
                "responses": [{"text": "r7", "correct": True}, {"text": "r7", "correct": True},
                              {"text": "w6", "correct": False}, {"text": "w8", "correct": False}]} for q in questions]
    pairs = [json.loads(line) for line in (work / "pts" / "pairs.jsonl").read_text().splitlines()]
    data, margin_pairs = dpo_effect.arm_datasets(argparse.Namespace(seed=3), work, pairs, samples)
    kept_out = {q for q in questions if dpo_effect.held_out_for_margins(q)}
    assert 0 < len(kept_out) < len(questions) // 4
    assert {p["question_id"] for p in margin_pairs} == kept_out

    rows = {arm: [json.loads(line) for line in Path(data[arm]["file"]).read_text().splitlines()] for arm in dpo_effect.ARMS}
    assert not kept_out & {r["question_id"] for r in rows["pts"] + rows["random"]}
    assert not kept_out & {r["prompt"][0]["content"].split()[-1][:-1] for r in rows["full"]}
    # The control: the same prefixes and the same two tokens, the side chosen by a coin (text and ids together).
    swapped = 0
    for pts, control in zip(rows["pts"], rows["random"], strict=True):
        assert (pts["prompt_ids"], pts["position"]) == (control["prompt_ids"], control["position"])
        assert {pts["chosen"], pts["rejected"]} == {control["chosen"], control["rejected"]}
        flipped = control["chosen_ids"] != pts["chosen_ids"]
        assert flipped == (control["chosen"] != pts["chosen"])
        swapped += flipped
    assert 0.25 < swapped / len(rows["pts"]) < 0.75
    # Full responses: each distinct wrong answer below a correct one; RFT: distinct correct answers only.
    assert len(rows["full"]) == 2 * (len(questions) - len(kept_out))
    assert all(r["chosen"][0]["content"] == "r7" and r["rejected"][0]["content"] in {"w6", "w8"} for r in rows["full"])
    assert [r["messages"][1]["content"] for r in rows["rft"]] == ["r7"] * (len(questions) - len(kept_out))


def test_settings_parse_and_only_settings_every_seed_ran_are_compared():
    assert dpo_effect.Setting.parse("1e-5,0.2,1") == dpo_effect.Setting(1e-5, 0.2, 1.0)
    assert dpo_effect.Setting.parse("2e-6").name == "lr2e-06_b0.1_a0"
    with pytest.raises(ValueError, match="lr\\[,beta"):
        dpo_effect.Setting.parse("1,2,3,sgd,5,6")
    lora = dpo_effect.Setting.parse("3e-4,0.1,1,,16")
    assert lora == dpo_effect.Setting(3e-4, 0.1, 1.0, "", 16) and lora.name == "lr0.0003_b0.1_a1_lora16"
    assert lora.recipe_keys() == {"use_peft": True, "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["all-linear"]}
    sgd = dpo_effect.Setting.parse("0.1,0.1,0,sgd")
    assert sgd == dpo_effect.Setting(0.1, 0.1, 0.0, "sgd") and sgd.name == "lr0.1_b0.1_a0_sgd"

    def seed_run(arm_scores: dict) -> dict:
        return {"sft_scores": {"a": 0.0, "b": 1.0, "c": 0.0},
                "arms": {key: {"scores": scores} for key, scores in arm_scores.items()}}

    runs = [seed_run({"pts/x": {"a": 1.0, "b": 1.0, "c": 0.0}, "full/x": {"a": 0.0, "b": 1.0, "c": 0.0}}),
            seed_run({"pts/x": {"a": 1.0, "b": 1.0, "c": 1.0}})]
    differences = dpo_effect.arm_differences(runs)
    assert list(differences) == ["pts/x"]  # full/x ran on one seed only
    assert differences["pts/x"]["mean"] == pytest.approx(0.5) and differences["pts/x"]["per_seed"] == [
        pytest.approx(1 / 3), pytest.approx(2 / 3)]


def test_held_out_margins_are_the_policy_minus_reference_log_ratio(tmp_path):
    """A model against itself has margin 0 on every pair; against a reference whose log-probs favour the rejected
    token by 1 nat it has margin +beta on each pair (the sign the issue's "rising on held-out pairs" reads)."""
    import torch

    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM

    torch.manual_seed(0)
    Phi4ForCausalLM(Phi4Config.from_preset("tiny")).save_pretrained(tmp_path / "model")
    pairs = [_pts_pair(f"q{i}", 3 + i) for i in range(4)]
    own = dpo_effect.pair_logps(tmp_path / "model", pairs)
    assert len(own) == 4 and all(c < 0 and r < 0 for c, r in own)
    same = dpo_effect.held_out_margins(tmp_path / "model", pairs, own, beta=0.1)
    assert same["pairs"] == 4 and same["mean"] == pytest.approx(0, abs=1e-6) and same["accuracy"] == 0
    tilted = [(c - 0.5, r + 0.5) for c, r in own]
    better = dpo_effect.held_out_margins(tmp_path / "model", pairs, tilted, beta=0.1)
    assert better["mean"] == pytest.approx(0.1) and better["accuracy"] == 1
    assert dpo_effect.held_out_margins(tmp_path / "model", [], [], beta=0.1) == {"pairs": 0}


# ------------------------------------------------------------------------ other models: options and their defaults

REPO = Path(__file__).resolve().parents[1]
TINY_DEFAULTS = {"recipes": "recipes/tiny", "train_data": "data/tiny/arithmetic_train.jsonl",
                 "validation_benchmark": "tiny_arithmetic_validation", "held_out_benchmark": "tiny_arithmetic",
                 "backend": "transformers", "backend_kwargs": None, "batch_size": 8}
SMOLLM2 = ["--recipes", "recipes/smollm2", "--train_data", "q/search.jsonl", "--backend", "vllm", "--batch_size", "4",
           "--validation_benchmark", "smollm2_questions_validation", "--held_out_benchmark", "smollm2_questions"]


def _stages(monkeypatch, tmp_path: Path, *options: str):
    """The bench's stages with the scripts replaced by a recorder: (args, work, recorded commands). PTS "writes"
    the manifest the bench reads back."""
    work = tmp_path / "work"
    args = dpo_effect.build_parser().parse_args(["run", "--sft", "/ckpt/sft", "--seed", "3", "--work", str(work), *options])
    commands = []

    def record(command, log, threads):
        commands.append(command)
        if command[0].endswith("run_pts.py"):
            (work / "pts").mkdir(parents=True)
            (work / "pts" / "manifest.json").write_text(json.dumps({
                "summary": {"questions": 2, "rollouts": 10}, "resolved_config": {"script_args": {"responses_per_question": 8}}}))

    monkeypatch.setattr(dpo_effect, "run_stage", record)
    monkeypatch.setattr(dpo_effect, "item_scores", lambda out, benchmark: {})
    return args, work, commands


def _recipe_as_written(base: str, **changes) -> str:
    """What the bench wrote before it had options: the base recipe with the stage's changes, None removing a key."""
    recipe = yaml.safe_load((REPO / base).read_text())
    for key, value in changes.items():
        recipe.pop(key, None) if value is None else recipe.__setitem__(key, value)
    return yaml.safe_dump(recipe, sort_keys=False)


def test_defaults_are_the_tiny_run_and_write_the_recipes_it_always_wrote(monkeypatch, tmp_path):
    """Runs of the tiny bench started before the options existed finish with `run --final` on the same command line:
    the defaults must resolve to the same recipes, data, benchmarks and stage commands."""
    args, work, commands = _stages(monkeypatch, tmp_path)
    assert {key: getattr(args, key) for key in TINY_DEFAULTS} == TINY_DEFAULTS
    assert (args.questions, args.steps, args.settings) == (1600, 120, list(dpo_effect.DEFAULT_SETTINGS))

    dpo_effect.search_pivots(args, work)
    assert (work / "recipes" / "pts.yaml").read_text() == _recipe_as_written(
        "recipes/tiny/pts.yaml", model_name_or_path="/ckpt/sft", output_dir=str(work / "pts"), max_questions=1600,
        seed=3, plot_max=0)
    common = dict(model_name_or_path="/ckpt/sft", datasets=[{"path": "json", "data_files": "d.jsonl"}], learning_rate=1e-5,
                  max_steps=120, num_train_epochs=None, per_device_train_batch_size=8, warmup_steps=0.1,
                  lr_scheduler_type="cosine", logging_steps=1, seed=3)
    for arm in dpo_effect.ARMS:
        dpo_effect.train_arm(args, work, arm, "d.jsonl", dpo_effect.Setting.parse("1e-5,0.1,1"))
    for arm in ("pts", "full", "random"):
        name = f"{arm}_lr1e-05_b0.1_a1"
        assert (work / "recipes" / f"{name}.yaml").read_text() == _recipe_as_written(
            "recipes/tiny/dpo_pts.yaml", beta=0.1, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0],
            output_dir=str(work / "models" / name), **common)
    assert (work / "recipes" / "rft_lr1e-05_b0.1_a1.yaml").read_text() == _recipe_as_written(
        "recipes/tiny/sft.yaml", output_dir=str(work / "models" / "rft_lr1e-05_b0.1_a1"), **common)
    # An optimizer other than the recipe's AdamW is named in the recipe and in the arm's name; so is LoRA, and the
    # recipes pass the stage scripts' own checks (key names and types) as written.
    from trl import DPOConfig, SFTConfig

    from phi4_recipes.configs import ModelConfig, ScriptArguments, check_recipe

    dpo_effect.train_arm(args, work, "pts", "d.jsonl", dpo_effect.Setting.parse("0.1,0.1,0,sgd"))
    assert yaml.safe_load((work / "recipes" / "pts_lr0.1_b0.1_a0_sgd.yaml").read_text())["optim"] == "sgd"
    for arm, config in (("pts", DPOConfig), ("rft", SFTConfig)):
        dpo_effect.train_arm(args, work, arm, "d.jsonl", dpo_effect.Setting.parse("3e-4,0.1,0,,16"))
        recipe = work / "recipes" / f"{arm}_lr0.0003_b0.1_a0_lora16.yaml"
        assert yaml.safe_load(recipe.read_text())["use_peft"] is True
        check_recipe(recipe, (ScriptArguments, config, ModelConfig))
    dpo_effect.score(args, work, Path("/ckpt/sft"), args.validation_benchmark)
    assert commands[0] == ["src/phi4_recipes/run_pts.py", str(work / "recipes" / "pts.yaml")]
    assert commands[-1] == ["src/phi4_recipes/run_eval.py", "recipes/tiny/eval.yaml", "--model_name_or_path", "/ckpt/sft",
                            "--benchmarks", "tiny_arithmetic_validation", "--output_dir",
                            str(work / "evals" / "tiny_arithmetic_validation" / "sft")]


def test_smollm2_options_resolve_its_recipes_questions_benchmarks_and_vllm(monkeypatch, tmp_path):
    args, work, commands = _stages(monkeypatch, tmp_path, *SMOLLM2)
    dpo_effect.search_pivots(args, work)
    pts = yaml.safe_load((work / "recipes" / "pts.yaml").read_text())
    smollm2_pts = yaml.safe_load((REPO / "recipes" / "smollm2" / "pts.yaml").read_text())
    assert pts["dataset_name"] == "q/search.jsonl" and pts["model_name_or_path"] == "/ckpt/sft"
    assert (pts["backend"], pts["backend_kwargs"]) == ("vllm", dpo_effect.VLLM_KWARGS)
    assert pts["system_prompt"] == smollm2_pts["system_prompt"] and pts["max_new_tokens"] == smollm2_pts["max_new_tokens"]

    dpo_effect.train_arm(args, work, "rft", "d.jsonl", dpo_effect.Setting.parse("1e-6"))
    dpo_effect.train_arm(args, work, "pts", "d.jsonl", dpo_effect.Setting.parse("1e-6"))
    rft = yaml.safe_load((work / "recipes" / "rft_lr1e-06_b0.1_a0.yaml").read_text())
    dpo = yaml.safe_load((work / "recipes" / "pts_lr1e-06_b0.1_a0.yaml").read_text())
    assert commands[1][0].endswith("run_sft.py") and commands[2][0].endswith("run_dpo.py")
    for recipe, base in ((rft, "sft.yaml"), (dpo, "dpo_pts.yaml")):
        assert recipe["max_length"] == yaml.safe_load((REPO / "recipes" / "smollm2" / base).read_text())["max_length"]
        assert (recipe["per_device_train_batch_size"], recipe["learning_rate"]) == (4, 1e-6)
        assert recipe["datasets"] == [{"path": "json", "data_files": "d.jsonl"}]
    assert rft["assistant_only_loss"] is True and "chat_template_path" not in rft  # SmolLM2 keeps its own template

    dpo_effect.score(args, work, Path("/ckpt/dpo"), args.held_out_benchmark)
    assert commands[-1][1:5] == ["recipes/smollm2/eval.yaml", "--model_name_or_path", "/ckpt/dpo", "--benchmarks"]
    assert commands[-1][5] == "smollm2_questions"

    # Explicit backend options replace the default ones (transformers on a GPU without vLLM).
    args.backend, args.backend_kwargs = "transformers", '{"device": "cuda", "max_batch_rows": 512}'
    assert dpo_effect.generation_backend(args) == {"backend": "transformers",
                                                   "backend_kwargs": {"device": "cuda", "max_batch_rows": 512}}


def test_the_pts_system_prompt_reaches_the_whole_response_arms_and_pivot_kinds_read_either_template(tmp_path):
    samples = [{"id": f"q{i}", "question": f"Q{i}?", "answer": "7", "system_prompt": "Be brief.",
                "responses": [{"text": "7", "correct": True}, {"text": "6", "correct": False}]} for i in range(20)]
    data, _ = dpo_effect.arm_datasets(argparse.Namespace(seed=1), tmp_path, [], samples)
    rows = {arm: [json.loads(line) for line in Path(data[arm]["file"]).read_text().splitlines()] for arm in ("full", "rft")}
    assert rows["full"] and rows["rft"]
    assert all(r["prompt"][0] == {"role": "system", "content": "Be brief."} for r in rows["full"])
    assert all(r["messages"][:2] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": r["messages"][1]["content"]}]
               for r in rows["rft"])
    assert dpo_effect.chat_prompt("Q?", None) == [{"role": "user", "content": "Q?"}]  # the tiny run's prompt
    assert dpo_effect.response_prefix("<|im_start|>user<|im_sep|>3 + 4<|im_end|><|im_start|>assistant<|im_sep|>3 +") == "3 +"
    chatml = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nThe answer is"
    assert dpo_effect.response_prefix(chatml) == "The answer is"


def _smollm2_questions():
    spec = importlib.util.spec_from_file_location("pts_smollm2_questions", REPO / "bench" / "pts_smollm2_questions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smollm2_validation_split_is_disjoint_and_its_benchmarks_read_the_generated_files(tmp_path, monkeypatch):
    from phi4_recipes.evaluation.registry import LOCAL_TASKS_DIR, load_registry

    questions = _smollm2_questions()
    questions.main(["--out", str(tmp_path / "q"), "--per_split", "40", "--validation", "30"])
    split = {name: [json.loads(line) for line in (tmp_path / "q" / f"{name}.jsonl").read_text().splitlines()]
             for name in ("search", "heldout", "validation")}
    assert len(split["validation"]) >= 25
    for a, b in (("validation", "search"), ("validation", "heldout"), ("heldout", "search")):
        for key in ("id", "question"):
            assert not {r[key] for r in split[a]} & {r[key] for r in split[b]}, (a, b, key)
    # Asking for a validation split leaves the search and held-out splits as they were.
    assert (split["search"], split["heldout"]) == tuple(questions.generate(40, 0))

    spec = importlib.util.spec_from_file_location("smollm2_task_utils", LOCAL_TASKS_DIR / "phi4_smollm2_questions" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    monkeypatch.setenv(utils.QUESTIONS_ENV, str(tmp_path / "q"))
    assert list(utils.load_validation()["test"]) == split["validation"]
    assert list(utils.load_heldout()["test"]) == split["heldout"]
    doc = split["heldout"][0]
    assert utils.process_results(doc, [f"So it is {doc['answer']}. The answer is {doc['answer']}."]) == {"accuracy": 1}
    assert utils.process_results(doc, [f"The answer is {int(doc['answer']) + 1}."]) == {"accuracy": 0}
    monkeypatch.setenv(utils.QUESTIONS_ENV, str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="PHI4_SMOLLM2_QUESTIONS"):
        utils.load_validation()

    registry = load_registry()
    assert registry["smollm2_questions"].task == "phi4_smollm2_questions"
    assert registry["smollm2_questions_validation"].task == "phi4_smollm2_questions_validation"
    eval_recipe = yaml.safe_load((REPO / "recipes" / "smollm2" / "eval.yaml").read_text())
    assert eval_recipe["system_prompt"] == yaml.safe_load((REPO / "recipes" / "smollm2" / "pts.yaml").read_text())["system_prompt"]


def test_the_smollm2_gpu_script_parses_and_names_real_options(capsys):
    script = REPO / "bench" / "gpu_suite_dpo_effect.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    with pytest.raises(SystemExit):
        dpo_effect.build_parser().parse_args(["run", "--help"])
    run_help = capsys.readouterr().out
    others = {"--package", "--out", "--per_split", "--validation"}  # import_gguf's and the question generator's
    options = {word for word in script.read_text().split() if word.startswith("--") and word[2:].isidentifier()}
    assert options - others and all(option in run_help for option in options - others), options - others
    text = script.read_text()
    assert "--validation_benchmark smollm2_questions_validation --held_out_benchmark smollm2_questions" in text


def test_margin_summary_reads_tenths_of_the_steps_averaged_over_seeds():
    """One step's margin is one batch's, so the table reads means over the first, middle and last tenth."""
    def run(offset: float) -> dict:
        curve = [{"step": i + 1, "rewards/margins": i + offset} for i in range(100)]
        return {"arms": {"pts/x": {"margins": curve, "held_out_margins": {"pairs": 4, "mean": offset, "accuracy": 0.5}}}}

    text = dpo_effect.margin_summary([run(0.0), run(1.0)], "pts/x")
    assert text.startswith("+5.000 -> +50.000 -> +95.000")
    assert "held-out pairs +0.500 (50% > 0)" in text
    assert dpo_effect.margin_summary([{"arms": {"rft/x": {"margins": []}}}], "rft/x") == "-"


def test_a_lora_arm_is_scored_on_its_adapter_merged_into_the_sft_model(lora_adapter):
    """The arm's adapter goes through phi4_recipes.merge_adapter (tests/test_merge_adapter.py checks the merge)
    into `<arm>_merged` beside it, once; a full checkpoint is scored as it is."""
    adapter, _ = lora_adapter
    merged = dpo_effect.merged_model(adapter)
    assert merged == adapter.parent / "dpo_pts_adapter_merged"
    assert (merged / "config.json").exists() and not (merged / "adapter_config.json").exists()
    stamp = (merged / "config.json").stat().st_mtime_ns
    assert dpo_effect.merged_model(adapter) == merged and (merged / "config.json").stat().st_mtime_ns == stamp
    assert dpo_effect.merged_model(merged) == merged


def test_a_validation_tie_goes_to_the_larger_held_out_pair_margin_then_the_name():
    """The rule fixed before the third tuning seed: equal validation scores are broken by the margin on the PTS
    pairs kept out of training (no held-out benchmark item is read), and only then by the name."""
    adamw, lora, worse = "pts/lr3e-06_b0.1_a1", "pts/lr0.0003_b0.1_a1_lora16", "pts/lr9e-06_b0.1_a0"

    def seed_run(margins: dict) -> dict:
        return {"arms": {key: {"held_out_margins": {"pairs": 3, "mean": m, "accuracy": 0.5} if m is not None else None}
                         for key, m in margins.items()}}

    runs = [seed_run({adamw: 0.01, lora: 0.10, worse: 0.50, "rft/a": None, "rft/b": None}),
            seed_run({adamw: 0.01, lora: 0.05, worse: 0.50, "rft/a": None, "rft/b": None})]
    differences = {adamw: {"mean": 0.008}, lora: {"mean": 0.008}, worse: {"mean": 0.0},
                   "rft/a": {"mean": 0.004}, "rft/b": {"mean": 0.004}}
    assert max([adamw, lora]) == adamw  # what the name alone chose
    assert dpo_effect.choose_setting(runs, differences, "pts") == lora
    assert dpo_effect.choose_setting(runs, differences, "rft") == "rft/b"  # no margins: the name decides
    assert dpo_effect.choose_setting(runs, differences, "full") is None
    assert dpo_effect.held_out_pair_margin(runs, lora) == pytest.approx(0.075)
    differences[adamw]["mean"] = 0.009  # a better validation score wins over any margin
    assert dpo_effect.choose_setting(runs, differences, "pts") == adamw
