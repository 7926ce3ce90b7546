"""The one producer contract on datatrove (issue 25): PTS, judge and synth run as reader -> step -> writer
pipelines on datatrove's executors. Two tasks (two real worker processes) give exactly the rows one task
gives; a task killed mid-way completes on resubmission while the finished task is not run again; settings
and records are checked one way for all three."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judge_fixtures import TINY_KEY_ENV, tiny_responders, write_prompts, write_recipe
from phi4_recipes.configs import RecipeError, parse_recipe
from phi4_recipes.curate.options import CurateConfig
from phi4_recipes.data.tiny import arithmetic_problems
from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.producers import (
    Producer,
    ProducerInput,
    WorkUnit,
    check_settings,
    read_records,
    shard_path,
    task_of,
)
from phi4_recipes.producers.options import ExecutorArguments
from phi4_recipes.run_judge import main as run_judge
from phi4_recipes.standins.judge_server import RuleJudgeServer
from phi4_recipes.standins.synth_server import StandinServer
from phi4_recipes.synth.options import SynthScriptArguments
from stage_runner import REPO, script_env
from synth_helpers import read_outputs, run_workflow
from test_pts_run import pts_argv, questions_file, run_in_process, shard_records, small_model  # noqa: F401

pytest_plugins = ["generation_fixtures"]

ROWS = [{k: p[k] for k in ("id", "question", "answer")} for p in arithmetic_problems("train", 24)]
TWO_WORKERS = ("--tasks", "2", "--workers", "2")


def _records_by_id(output_dir: Path, id_key: str, drop: tuple[str, ...] = ()) -> dict[str, dict]:
    """Every record of the folder by row id, without fields that time the run."""
    return {r[id_key]: {k: v for k, v in r.items() if k not in drop} for r in read_records(output_dir, id_key)}


def _shard_ids(output_dir: Path, tasks: int) -> list[list[str]]:
    return [[json.loads(line)["id"] for line in shard_path(output_dir, k, tasks).read_text().splitlines()]
            for k in range(tasks)]


def _two_per_task(fixture: Path, tmp_path: Path) -> Path:
    """Four questions of the fixture, two hashed to each of two tasks (its first four all hash to task 1)."""
    rows = [json.loads(line) for line in fixture.read_text().splitlines()]
    picked = [r for k in (0, 1) for r in [r for r in rows if task_of(r["id"], 2) == k][:2]]
    assert len(picked) == 4, "the fixture needs two questions on each task"
    path = tmp_path / "questions.jsonl"
    write_jsonl(path, picked)
    return path


def test_pts_two_tasks_give_the_rows_of_one_task(small_model, questions_file, tmp_path):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    questions = _two_per_task(questions_file, tmp_path)
    run_in_process(pts_argv(small_model, questions, one, "--max_questions", "4"))
    run_in_process(pts_argv(small_model, questions, two, "--max_questions", "4", *TWO_WORKERS))
    parts = [{r["question_id"] for r in shard_records(shard_path(two, k, 2))} for k in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == 2 and not parts[0] & parts[1]
    assert all(task_of(q, 2) == k for k in (0, 1) for q in parts[k])
    assert _records_by_id(two, "question_id", ("seconds",)) == _records_by_id(one, "question_id", ("seconds",))
    assert (two / "pairs.jsonl").read_bytes() == (one / "pairs.jsonl").read_bytes()
    assert sorted(p.name for p in (two / "logs" / "completions").iterdir()) == ["00000", "00001"]
    # datatrove's merged stats: one entry per step, named with its type ("💽 - WRITER: task shard").
    stats = {s["name"].split(": ")[-1]: s["stats"] for s in json.loads((two / "logs" / "stats.json").read_text())}
    written = stats["task shard"]["rows_written"]
    assert (written["total"] if isinstance(written, dict) else written) == 4


def test_an_export_reads_records_in_input_order_whatever_task_wrote_them():
    class Rows(Producer):
        stage, id_key = "rows", "id"

        def check_record(self, record):
            pass

        def read_input(self):
            return ProducerInput([WorkUnit("b", ("b", "c"), None), WorkUnit("a", ("a",), None)], [])

        def open(self):
            pass

        def work(self, unit):
            return []

        def close(self):
            pass

    shard_order = [{"id": "a"}, {"id": "gone"}, {"id": "c"}, {"id": "b"}]  # task 1's shard before task 0's
    assert [r["id"] for r in Rows(None).in_input_order(shard_order)] == ["b", "c", "a", "gone"]


def test_judge_two_tasks_give_the_rows_of_one_task(tmp_path, server, monkeypatch):
    from generation_fixtures import SERVER_API_KEY

    monkeypatch.setenv(TINY_KEY_ENV, SERVER_API_KEY)
    prompts = write_prompts(tmp_path / "prompts.jsonl",
                            [{"id": f"r{i}", "question": f"Tell me about the number {i}."} for i in range(8)])
    outputs = {}
    with RuleJudgeServer() as judge:
        for name, extra in (("one", {}), ("two", {"tasks": 2, "workers": 2})):
            recipe = write_recipe(tmp_path / f"{name}.yaml", dataset_name=str(prompts), include_rai_prompts=False,
                                  responders=tiny_responders(server.base_url), judge_model="rule-judge",
                                  judge_base_url=judge.base_url, judge_api_key_env="PHI4_TEST_NO_JUDGE_KEY",
                                  prompts_per_batch=2, output_dir=str(tmp_path / name), seed=3, **extra)
            (args,) = parse_recipe(JudgeScriptArguments, argv=[str(recipe)])
            run_judge(args)
            outputs[name] = tmp_path / name
    # Batches are cut from the whole input before the tasks split it, so batch seeds (and records) match. Four
    # batches (first ids r0, r2, r4, r6) hash to tasks 1, 0, 1 and 0: the shards hold them out of input order,
    # and the export reads them back in input order (Producer.in_input_order, below).
    assert _records_by_id(outputs["two"], "prompt_id") == _records_by_id(outputs["one"], "prompt_id")
    for name in ("pairs.jsonl", "judge_stats.json"):
        assert (outputs["two"] / name).read_bytes() == (outputs["one"] / name).read_bytes(), name
    assert all(shard_path(outputs["two"], k, 2).stat().st_size for k in (0, 1))


def test_synth_two_tasks_give_the_rows_of_one_task(tmp_path):
    with StandinServer() as standin:
        via = {"backend": "openai", "model_name_or_path": "standin", "base_url": standin.base_url}
        one = run_workflow(tmp_path, "plurality", ROWS, name="one", **via)
        two = run_workflow(tmp_path, "plurality", ROWS, name="two", tasks=2, workers=2, **via)
    assert two == one
    assert _records_by_id(tmp_path / "two", "id") == _records_by_id(tmp_path / "one", "id")
    parts = _shard_ids(tmp_path / "two", 2)
    assert sorted(parts[0] + parts[1]) == sorted(r["id"] for r in ROWS) and parts[0] and parts[1]


def test_pts_on_a_local_ray_cluster_gives_the_rows_of_one_local_task(small_model, questions_file,  # noqa: F811
                                                                      tmp_path):
    ray = pytest.importorskip("ray", reason="the `ray` extra (pip install -e '.[ray]')")
    one, on_ray = tmp_path / "one", tmp_path / "ray"
    run_in_process(pts_argv(small_model, questions_file, one, "--max_questions", "3"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}})
    try:
        run_in_process(pts_argv(small_model, questions_file, on_ray, "--max_questions", "3", "--executor", "ray",
                                *TWO_WORKERS))
    finally:
        ray.shutdown()
    assert _records_by_id(on_ray, "question_id", ("seconds",)) == _records_by_id(one, "question_id", ("seconds",))
    assert (on_ray / "pairs.jsonl").read_bytes() == (one / "pairs.jsonl").read_bytes()
    assert sorted(p.name for p in (on_ray / "logs" / "completions").iterdir()) == ["00000", "00001"]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_killed_task_completes_on_resubmission_and_the_finished_task_is_not_rerun(tmp_path):
    """Two tasks, one after another in one process: kill -9 the process group while task 1 is mid-way, after
    task 0 finished. The resubmission skips task 0 (its completion marker), resumes task 1 from its shard,
    and the output equals an uninterrupted run's."""
    with StandinServer() as fast:
        reference = run_workflow(tmp_path, "plurality", ROWS, name="reference", backend="openai",
                                 model_name_or_path="standin", base_url=fast.base_url)
    data = write_jsonl(tmp_path / "input.jsonl", ROWS)
    out = tmp_path / "killed"
    logs = out / "logs"
    task_rows = [sum(task_of(r["id"], 2) == k for r in ROWS) for k in (0, 1)]

    def command(base_url: str) -> list[str]:
        return [sys.executable, str(REPO / "src/phi4_recipes/run_synth.py"), "--workflow", "plurality",
                "--dataset_name", str(data), "--output_dir", str(out), "--backend", "openai",
                "--model_name_or_path", "standin", "--base_url", base_url, "--tasks", "2", "--workers", "1"]

    with StandinServer(delay=0.1) as slow:
        # a session of its own, so the kill takes every process the run started, as a preempted job loses them
        process = subprocess.Popen(command(slow.base_url), cwd=REPO, env=script_env(), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300  # start-up (imports) is most of it on a loaded machine
        while _lines(shard_path(out, 1, 2)) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert 2 <= _lines(shard_path(out, 1, 2)) < task_rows[1], "task 1 must be killed mid-way"
    assert (logs / "completions" / "00000").is_file() and not (logs / "completions" / "00001").exists()
    finished = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in
                (shard_path(out, 0, 2), logs / "completions" / "00000", logs / "stats" / "00000.json",
                 logs / "logs" / "task_00000.log")}

    with StandinServer() as fast:
        rerun = subprocess.run(command(fast.base_url), cwd=REPO, env=script_env(), capture_output=True, text=True,
                               timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for path, before in finished.items():  # task 0 did not run again: nothing of it was rewritten
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before, path
    assert "task 0/2" not in rerun.stdout and "synth/plurality task 1/2" in rerun.stdout
    assert (logs / "completions" / "00001").is_file()
    assert _lines(shard_path(out, 1, 2)) == task_rows[1]
    assert read_outputs(out)["data"] == reference["data"]
    assert _records_by_id(out, "id") == _records_by_id(tmp_path / "reference", "id")


def test_new_input_rows_run_again_after_every_task_completed(tmp_path):
    """Completion markers hold for one input: a rerun with more rows does the new rows only."""
    with StandinServer() as standin:
        via = {"backend": "openai", "model_name_or_path": "standin", "base_url": standin.base_url}
        whole = run_workflow(tmp_path, "plurality", ROWS, name="whole", **via)
        run_workflow(tmp_path, "plurality", ROWS, name="grown", max_rows=10, **via)
        before = shard_path(tmp_path / "grown", 0, 1).read_bytes()
        grown = run_workflow(tmp_path, "plurality", ROWS, name="grown", **via)
    assert shard_path(tmp_path / "grown", 0, 1).read_bytes().startswith(before)
    assert grown["data"] == whole["data"]


def test_changed_settings_are_refused_naming_the_file_and_each_key(tmp_path):
    check_settings(tmp_path, {"seed": 1, "model": "m"})
    check_settings(tmp_path, {"seed": 1, "model": "m"})
    with pytest.raises(RecipeError, match=r"settings.json: .* other settings \(model: 'm' -> 'n', seed: 1 -> 2\)"):
        check_settings(tmp_path, {"seed": 2, "model": "n"})
    with StandinServer() as standin:
        via = {"backend": "openai", "model_name_or_path": "standin", "base_url": standin.base_url}
        run_workflow(tmp_path, "plurality", ROWS[:2], name="run", **via)
        with pytest.raises(RecipeError, match=r"run/settings.json: .*\(seed: 42 -> 7\)"):
            run_workflow(tmp_path, "plurality", ROWS[:2], name="run", seed=7, **via)


def test_records_keep_the_first_of_each_id_and_name_a_bad_line(tmp_path):
    write_jsonl(tmp_path / "shard-00000-of-00002.jsonl", [{"id": "a", "v": 1}, {"id": "b", "v": 1}])
    write_jsonl(tmp_path / "shard-00001-of-00002.jsonl", [{"id": "a", "v": 2}])
    (tmp_path / "shard-00000-of-00001.jsonl").write_text('{"id": "c", "v": 3}\n{"id": "d", "v"')  # torn last line
    assert read_records(tmp_path, "id") == [{"id": "c", "v": 3}, {"id": "a", "v": 1}, {"id": "b", "v": 1}]
    write_jsonl(tmp_path / "shard-00001-of-00002.jsonl", [{"id": "a", "v": 2}, {"v": 3}, {"id": "e"}])
    with pytest.raises(ValueError, match=r"shard-00001-of-00002.jsonl, line 2: not a record \(no string 'id'\)"):
        read_records(tmp_path, "id")


def test_producers_take_the_executor_keys_of_recipes_curate(tmp_path):
    keys = ("executor", "tasks", "workers", "local_start_method", "slurm_partition", "slurm_time",
            "slurm_cpus_per_task", "slurm_mem_per_cpu_gb", "slurm_qos", "slurm_venv_path", "slurm_logs_dir")
    assert set(keys) <= set(CurateConfig.__dataclass_fields__) and set(keys) <= set(ExecutorArguments.__dataclass_fields__)
    recipe = tmp_path / "synth.yaml"
    recipe.write_text("workflow: plurality\ndataset_name: d.jsonl\noutput_dir: o\nexecutor: slurm\n")
    with pytest.raises(RecipeError, match=r"synth.yaml: executor: slurm needs key 'slurm_partition'"):
        parse_recipe(SynthScriptArguments, argv=[str(recipe)])
    recipe.write_text("workflow: plurality\ndataset_name: d.jsonl\noutput_dir: o\nnum_shards: 2\n")
    with pytest.raises(RecipeError, match=r"synth.yaml: unknown key 'num_shards'"):
        parse_recipe(SynthScriptArguments, argv=[str(recipe)])


def _stand_in_sbatch(folder: Path) -> Path:
    """An `sbatch` on PATH that keeps what datatrove submits (its arguments and the script) and answers like
    Slurm does; no Slurm runs here, so the test stops where the cluster would take over."""
    folder.mkdir()
    script = folder / "sbatch"
    script.write_text('#!/bin/bash\nn=$(ls "$SBATCH_LOG" | wc -l)\nmkdir -p "$SBATCH_LOG/$n"\n'
                      'printf "%s\\n" "${@:1:$#-1}" > "$SBATCH_LOG/$n/args"\ncp "${@: -1}" "$SBATCH_LOG/$n/script"\n'
                      'echo "Submitted batch job $((1000 + n))"\n')
    script.chmod(0o755)
    return folder


def test_slurm_submission_of_a_producer_recipe(tmp_path, monkeypatch):
    """recipes/pts.yaml through datatrove's SlurmPipelineExecutor: an array of `tasks` jobs with the recipe's
    partition, GPUs and virtualenv, the stats merge depending on the array; then rerunning the command with
    every task complete exports instead of submitting."""
    monkeypatch.setenv("PATH", f"{_stand_in_sbatch(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "submitted"))
    monkeypatch.chdir(REPO)
    from phi4_recipes.pts.options import PTSScriptArguments
    from phi4_recipes.run_pts import PTSProducer, main

    questions = write_jsonl(tmp_path / "questions.jsonl", [{"id": f"q{i}", "question": f"{i} + 1?", "answer": str(i + 1)}
                                                           for i in range(20)])
    out = tmp_path / "pts"
    (args,) = parse_recipe(PTSScriptArguments, argv=[
        "recipes/pts.yaml", "--dataset_name", str(questions), "--id_field", "id", "--question_field", "question",
        "--answer_field", "answer", "--output_dir", str(out), "--slurm_venv_path", "/shared/envs/phi4/bin/activate"])
    assert (args.executor, args.tasks, args.slurm_gpus_per_task) == ("slurm", 8, 2)
    assert main(args) == {}  # submitted, nothing exported yet
    array, merge = sorted((tmp_path / "submitted").iterdir())
    script = (array / "script").read_text()
    for line in ("#SBATCH --array=0-7", "#SBATCH --partition=gpu", "#SBATCH --gpus=2", "#SBATCH --job-name=pts",
                 "source /shared/envs/phi4/bin/activate", f"launch_pickled_pipeline {out / 'logs' / 'executor.pik'}"):
        assert line in script, line
    assert f"#SBATCH --output={out}/logs/slurm/" in script
    assert "#SBATCH --dependency=afterok:1000" in (merge / "script").read_text()  # stats merge waits for the array
    assert json.loads((out / "logs" / "ranks_to_run.json").read_text()) == list(range(8))
    assert not list(out.glob("shard-*")) and (out / "settings.json").is_file()

    # What each array task unpickles: the pipeline, its producer carrying its options only (rows are re-read).
    import dill

    executor = dill.loads((out / "logs" / "executor.pik").read_bytes())
    producer = executor.pipeline[0].producer
    assert isinstance(producer, PTSProducer) and producer._input is None and producer.args.tasks == 8

    # An array task that finished marks itself complete; once all are, the same command only exports.
    (out / "logs" / "completions").mkdir()
    for rank in range(8):
        (out / "logs" / "completions" / f"{rank:05d}").touch()
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "not-submitted"))
    with pytest.raises(OSError, match="outputs/phi4-14b/sft"):  # the export loads the recipe's (absent) tokenizer
        main(args)
    assert not (tmp_path / "not-submitted").exists()


@pytest.mark.parametrize("recipe, rows, tasks, gpus", [
    ("recipes/judge.yaml", [{"prompt_id": f"p{i}", "prompt": f"Tell me about the number {i}."} for i in range(5)],
     16, 2),
    ("recipes/synth/rewrite_slurm.yaml", [{"id": f"s{i}", "text": f"Seed passage number {i}."} for i in range(5)],
     64, 1),
])
def test_at_scale_judge_and_synth_recipes_submit_a_gpu_array(recipe, rows, tasks, gpus, tmp_path, monkeypatch):
    """The judge and synth recipes as written (only their input and output moved here) submit one array of
    `tasks` jobs, each with the GPUs its vLLM engine shards over and the recipe's virtualenv."""
    monkeypatch.setenv("PATH", f"{_stand_in_sbatch(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "submitted"))
    monkeypatch.chdir(REPO)
    from phi4_recipes import run_judge as judge_script
    from phi4_recipes import run_synth as synth_script

    script, options = (judge_script, JudgeScriptArguments) if "judge" in recipe else (synth_script, SynthScriptArguments)
    out = tmp_path / "out"
    (args,) = parse_recipe(options, argv=[recipe, "--dataset_name", str(write_jsonl(tmp_path / "rows.jsonl", rows)),
                                          "--output_dir", str(out)])
    assert script.main(args) == {}  # submitted, nothing exported yet
    array = sorted((tmp_path / "submitted").iterdir())[0]
    lines = (array / "script").read_text().splitlines()
    for line in (f"#SBATCH --array=0-{tasks - 1}", "#SBATCH --partition=gpu", f"#SBATCH --gpus={gpus}",
                 "source .venv/bin/activate", f"#SBATCH --cpus-per-task={args.slurm_cpus_per_task}"):
        assert any(line in written for written in lines), line
    assert not list(out.glob("shard-*")) and (out / "settings.json").is_file()


def test_curation_slurm_stages_depend_on_each_other(tmp_path, monkeypatch):
    """recipes/curate/slurm.yaml builds its executors with the producers' build_executor: three array jobs,
    each stage after the one before (afterok), the recipe's virtualenv activated in every script."""
    monkeypatch.setenv("PATH", f"{_stand_in_sbatch(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "submitted"))
    import yaml

    from phi4_recipes.curate.options import CurateConfig as Config
    from phi4_recipes.curate.pipeline import build_executors

    keys = yaml.safe_load((REPO / "recipes/curate/slurm.yaml").read_text())
    keys.update(input_dir=str(tmp_path), output_dir=str(tmp_path / "curate"), tasks=4,
                slurm_logs_dir=str(tmp_path / "slurm_logs"))
    executors = build_executors(Config(**keys), str(tmp_path / "quality.pkl"))
    executors[-1].run()
    jobs = sorted((tmp_path / "submitted").iterdir(), key=lambda p: int(p.name))
    scripts = [(job / "script").read_text() for job in jobs]
    arrays = [s for s in scripts if "launch_pickled_pipeline" in s and "merge_stats" not in s]
    assert ["#SBATCH --array=0-3" in arrays[0], "#SBATCH --array=0-0" in arrays[1], "#SBATCH --array=0-3" in arrays[2]] == [True] * 3
    assert all("source /shared/envs/phi4/bin/activate" in s for s in arrays)
    array_jobs = [job for job, s in zip(jobs, scripts) if s in arrays]
    ids = {job: 1000 + int(job.name) for job in jobs}
    for before, after in zip(array_jobs, array_jobs[1:]):
        assert f"--dependency=afterok:{ids[before]}" in (after / "args").read_text().split()
