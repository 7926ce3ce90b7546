"""run_pipeline.py: fingerprints skip finished stages, a killed run resumes to identical results, and the
leaderboard's paired differences are stated in words. A reduced pipeline of cheap stages keeps it fast."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from phi4_recipes.configs import parse_recipe
from phi4_recipes.evaluation.paired import paired_difference, significance_words, verdict
from phi4_recipes.run_pipeline import PipelineArguments, main

REPO = Path(__file__).resolve().parents[1]

# A stage: hashes its recipe and the files of the stages it reads into out.txt, optionally sleeping halfway
# (where the test kills it), and counts its runs in a file outside the run folder.
STAGE = '''
import argparse, hashlib, pathlib, sys, time
p = argparse.ArgumentParser()
p.add_argument("recipe"); p.add_argument("--output_dir"); p.add_argument("--inputs", nargs="*", default=[])
p.add_argument("--seed", default="0"); p.add_argument("--sleep", type=float, default=0); p.add_argument("--count")
a = p.parse_args()
out = pathlib.Path(a.output_dir); out.mkdir(parents=True, exist_ok=True)
with open(a.count, "a") as f: f.write(out.name + "\\n")
h = hashlib.sha256(pathlib.Path(a.recipe).read_bytes() + a.seed.encode())
for i in a.inputs: h.update(pathlib.Path(i, "out.txt").read_bytes())
(out / "partial.txt").write_text("half done")
(out / "started").write_text("1")
time.sleep(a.sleep)
(out / "out.txt").write_text(h.hexdigest())
'''


def write_pipeline(tmp_path: Path, sleep: float = 0.0) -> Path:
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    stages = []
    for name, needs in (("a", []), ("b", ["a"]), ("c", ["a", "b"])):
        recipe = tmp_path / f"{name}.yaml"
        if not recipe.exists():
            recipe.write_text(f"name: {name}\nreads: outputs/tiny/{needs[-1] if needs else 'none'}\n")
        stages.append({"name": name, "script": str(script), "recipe": str(recipe), "needs": needs,
                       "args": {"output_dir": f"{{run}}/{name}", "inputs": [f"{{run}}/{n}" for n in needs],
                                "seed": "{seed}", "sleep": sleep, "count": str(tmp_path / "count.txt")}})
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "seed": 7, "threads": 1, "stages": stages}))
    return path


def run(path: Path, *extra: str):
    (args,) = parse_recipe(PipelineArguments, argv=[str(path), *extra])
    return main(args)


def runs(tmp_path: Path) -> list[str]:
    count = tmp_path / "count.txt"
    return count.read_text().split() if count.exists() else []


def outputs(run_dir: Path) -> dict[str, str]:
    return {name: (run_dir / name / "out.txt").read_text() for name in "abc"}


def test_rerun_skips_finished_stages_and_a_changed_recipe_reruns_it_and_what_follows(tmp_path):
    path = write_pipeline(tmp_path)
    run(path)
    assert runs(tmp_path) == ["a", "b", "c"]
    first = outputs(tmp_path / "run")
    marker = json.loads((tmp_path / "run" / "b" / "pipeline.json").read_text())
    assert set(marker["needs"]) == {"a"} and marker["seed"] == 7
    run(path)
    assert runs(tmp_path) == ["a", "b", "c"], "nothing changed: every stage skipped"
    (tmp_path / "b.yaml").write_text("name: b\nchanged: true\n")
    run(path)
    assert runs(tmp_path) == ["a", "b", "c", "b", "c"], "b changed: b and c (which reads b) run again, a does not"
    assert outputs(tmp_path / "run")["a"] == first["a"] and outputs(tmp_path / "run")["c"] != first["c"]
    run(path, "--seed", "8")
    assert runs(tmp_path)[-3:] == ["a", "b", "c"], "a new seed is a new fingerprint everywhere"
    times = json.loads((tmp_path / "run" / "times.json").read_text())
    assert [t["stage"] for t in times] == ["a", "b", "c"] and all(t["status"] == "ran" for t in times)


def test_only_runs_the_named_stage_once_its_needs_have_finished(tmp_path):
    path = write_pipeline(tmp_path)
    with pytest.raises(SystemExit, match=r"stage b needs \['a'\], which have not finished"):
        run(path, "--only", "b")
    run(path, "--only", "a")
    run(path, "--only", "c", "b")
    assert runs(tmp_path) == ["a", "b", "c"]


def test_recipes_are_rebased_into_the_run_folder(tmp_path):
    path = write_pipeline(tmp_path)
    run(path)
    copy = tmp_path / "run" / "recipes" / Path(str(tmp_path / "b.yaml")).relative_to("/")
    assert copy.read_text() == f"name: b\nreads: {tmp_path / 'run'}/a\n"


@pytest.mark.parametrize("kill_in", ["a", "b", "c"])
def test_killed_in_any_stage_a_rerun_finishes_with_the_uninterrupted_results(tmp_path, kill_in):
    path = write_pipeline(tmp_path, sleep=0.5)
    run(path)
    uninterrupted = outputs(tmp_path / "run")
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "count.txt").unlink()

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    process = subprocess.Popen([sys.executable, str(REPO / "src/phi4_recipes/run_pipeline.py"), str(path)],
                               cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = tmp_path / "run" / kill_in / "started"
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and the stage it is running, as Ctrl-C or an OOM kill would
    process.wait()
    assert not (tmp_path / "run" / kill_in / "pipeline.json").exists()
    assert not (tmp_path / "run" / kill_in / "out.txt").exists(), "killed halfway through the stage"

    run(path)
    order = "abc"
    done_before = list(order[: order.index(kill_in)])
    # Before the kill: the finished stages and the killed one; the rerun: the killed one again and the rest.
    assert runs(tmp_path) == done_before + [kill_in] + list(order[order.index(kill_in):]), runs(tmp_path)
    assert outputs(tmp_path / "run") == uninterrupted


def test_stage_that_needs_a_later_stage_is_refused(tmp_path):
    path = write_pipeline(tmp_path)
    recipe = yaml.safe_load(path.read_text())
    recipe["stages"][0]["needs"] = ["c"]
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(Exception, match="needs 'c', which is not an earlier stage"):
        run(path)


def test_the_tiny_pipeline_recipe_names_existing_scripts_and_recipes():
    (args,) = parse_recipe(PipelineArguments, argv=[str(REPO / "recipes/tiny/pipeline.yaml")])
    names = [s["name"] for s in args.stages]
    assert names[:4] == ["curate", "synth", "pretrain", "midtrain"] and names[-1] == "leaderboard"
    for stage in args.stages:
        assert (REPO / stage["script"]).is_file(), stage["script"]
        assert stage.get("recipe") is None or (REPO / stage["recipe"]).is_file(), stage["recipe"]
    assert set(args.leaderboard["stages"]) <= set(names)


def test_paired_differences_in_words():
    n = 400
    base = {str(i): [0.0] for i in range(n)}
    better = {str(i): [1.0 if i < 80 else 0.0] for i in range(n)}  # +20 points on the same items
    diff = paired_difference(base, better)
    assert diff["mean"] == pytest.approx(0.2) and diff["stderr"] == pytest.approx(0.02, abs=1e-3)
    assert significance_words("base", "sft", "tiny_arithmetic", diff) == (
        "sft is significantly better than base on tiny_arithmetic (400 items, 1 seed): +20.0 ± 2.0 points "
        "(|z| = 10.0).")
    # Two seeds; +1 item out of 400 is noise, not a finding.
    a = {str(i): [0.0, 0.0] for i in range(n)}
    b = {str(i): [1.0, 0.0] if i == 0 else [0.0, 0.0] for i in range(n)}
    words = significance_words("sft", "dpo_pts", "tiny_arithmetic", paired_difference(a, b))
    assert words.startswith("dpo_pts is not significantly different from sft") and "2 seeds" in words
    worse = paired_difference(better, base)
    assert "significantly worse than" in significance_words("base", "sft", "x", worse)
    assert [verdict(d) for d in (diff, paired_difference(a, b), worse)] == [
        "significantly better", "not significant", "significantly worse"]
