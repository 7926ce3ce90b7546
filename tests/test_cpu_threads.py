"""torch's thread count per process (phi4_recipes.cpu_threads): flag, environment, affinity, runs sharing CPUs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from phi4_recipes.cpu_threads import (
    ENV,
    choose_threads,
    configure_threads,
    others_running,
    pop_threads_flag,
    usable_cpus,
)
from stage_runner import REPO, script_env

HOLDER = """
import sys
from pathlib import Path
from phi4_recipes.cpu_threads import runs_sharing
runs_sharing({0, 1}, Path(sys.argv[1]))
print("holding", flush=True)
sys.stdin.read()
"""


def test_flag_then_phi4_threads_then_omp_num_threads_win_over_the_share(tmp_path):
    both = {0, 1}
    assert choose_threads("3", {ENV: "2", "OMP_NUM_THREADS": "4"}, both, tmp_path) == (3, "--threads")
    assert choose_threads(None, {ENV: "2", "OMP_NUM_THREADS": "4"}, both, tmp_path) == (2, ENV)
    assert choose_threads(None, {"OMP_NUM_THREADS": "4"}, both, tmp_path) == (4, "OMP_NUM_THREADS")
    assert choose_threads(None, {}, both, tmp_path, busy=0) == (2, "2 usable CPUs, 0 busy, 1 runs")


def test_cpus_other_processes_keep_busy_are_left_to_them(tmp_path):
    four = {0, 1, 2, 3}
    assert choose_threads(None, {}, four, tmp_path, busy=1.2)[0] == 3
    assert choose_threads(None, {}, four, tmp_path, busy=9)[0] == 1  # never below one thread
    assert choose_threads(None, {ENV: "4"}, four, tmp_path, busy=9)[0] == 4  # a setting is taken as given
    assert others_running(samples=3, interval=0.01) >= 0


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_count_names_where_it_came_from(value, tmp_path):
    with pytest.raises(ValueError, match=ENV):
        choose_threads(None, {ENV: value}, {0}, tmp_path)
    with pytest.raises(ValueError, match="--threads"):
        choose_threads(value, {}, {0}, tmp_path)


def test_the_flag_is_taken_out_of_argv_in_both_spellings():
    argv = ["recipe.yaml", "--threads", "1", "--seed", "2"]
    assert pop_threads_flag(argv) == "1" and argv == ["recipe.yaml", "--seed", "2"]
    argv = ["recipe.yaml", "--threads=3"]
    assert pop_threads_flag(argv) == "3" and argv == ["recipe.yaml"]
    assert pop_threads_flag(argv) is None
    with pytest.raises(ValueError, match=ENV):
        pop_threads_flag(["--threads"])


def test_the_default_counts_only_the_cpus_this_process_may_use(tmp_path):
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    assert usable_cpus() == before
    try:
        os.sched_setaffinity(0, {min(before)})
        assert choose_threads(None, {}, lock_dir=tmp_path, busy=0)[0] == 1
        assert choose_threads(None, {}, lock_dir=tmp_path, busy=0)[1].startswith("1 usable CPUs")
    finally:
        os.sched_setaffinity(0, before)


def test_runs_on_the_same_cpus_split_them_and_a_finished_run_frees_its_share(tmp_path):
    env = script_env()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert choose_threads(None, {}, {0, 1}, tmp_path, busy=0)[0] == 1       # two runs on 2 CPUs: one each
        assert choose_threads(None, {}, {0, 1, 2, 3}, tmp_path, busy=0)[0] == 4  # another CPU set is not shared
    finally:
        holder.communicate("")
    assert choose_threads(None, {}, {0, 1}, tmp_path, busy=0)[0] == 2  # the holder exited: its lock is free


def test_every_stage_script_sets_threads_before_parsing_its_recipe():
    scripts = sorted((REPO / "src" / "phi4_recipes").glob("run_*.py"))
    for script in scripts:
        if script.name == "run_pipeline.py":  # runs no torch itself; each stage it starts picks its own count
            continue
        tree = ast.parse(script.read_text())
        main_block = next(node for node in tree.body if isinstance(node, ast.If)
                          and "__main__" in ast.unparse(node.test))
        first = ast.unparse(main_block.body[0])
        assert first == "configure_threads()", (script.name, first)


def test_a_stage_takes_the_flag_out_of_its_arguments_before_the_recipe_parser():
    env = script_env()
    env[ENV] = "many"  # the flag wins over the environment, so this bad value is never read
    ok = subprocess.run([sys.executable, "src/phi4_recipes/run_sft.py", "--threads", "1", "--help"], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "torch threads: 1 (--threads)" in ok.stderr and "--model_name_or_path" in ok.stdout


def test_a_bad_phi4_threads_stops_the_script_with_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv(ENV, "many")
    with pytest.raises(SystemExit, match=f"{ENV}='many'"):
        configure_threads(["recipe.yaml"])
