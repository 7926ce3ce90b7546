"""bench/gpu_suite.sh's command lines, checked on the CPU: `--dry-run` prints each one, and each must name files
that exist and arguments its parser accepts (a renamed recipe, script, accelerate config or flag fails here before
a lent GPU's minutes are spent on it). Nothing is run past argument parsing."""

from __future__ import annotations

import argparse
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import launch_command_parser
from transformers import HfArgumentParser
from trl import TrlParser

from stage_runner import REPO, script_env

sys.path.insert(0, str(REPO / "bench"))
import gpu_suite  # noqa: E402

SUITE = REPO / "bench" / "gpu_suite.sh"
ALL_SECTIONS = "liger,sft,vllm16k,pts,pts_full,dpo_effect"


class Parsed(Exception):
    """Raised by the patched parser once a script's arguments parse: the script stops before any work."""

    def __init__(self, extras: list[str]):
        super().__init__(extras)
        self.extras = extras


def dry_run(*options: str) -> list[list[str]]:
    # PYTHON names the interpreter the suite prints (make exports the caller's, e.g. CI's venv path): the plain
    # name here, so every command line reads as `python ...` whoever runs the tests.
    proc = subprocess.run(["bash", str(SUITE), "--dry-run", *options], cwd=REPO, env={**script_env(), "PYTHON": "python"},
                          capture_output=True, text=True, timeout=60, check=True)
    return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def parse_only(monkeypatch, target: str, args: list[str], module: bool = False) -> None:
    """Run a script or module as `python target args` up to its argument parser, then stop: argparse's
    parse_args and HfArgumentParser's parse_args_into_dataclasses (TrlParser, parse_recipe) are patched to parse,
    refuse what they did not take, and raise Parsed. A script's own parse_known_args passes through."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse_args(self, args, namespace)  # exits on an unknown or bad argument
        raise Parsed([])

    def dataclasses_then_stop(self, args=None, *more, **options):
        _, extras = self.parse_known_args(args=args)
        raise Parsed(extras)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for owner in {HfArgumentParser, *(c for c in TrlParser.__mro__ if "parse_args_into_dataclasses" in c.__dict__)}:
        monkeypatch.setattr(owner, "parse_args_into_dataclasses", dataclasses_then_stop)  # TRL vendors its own
    monkeypatch.setattr(sys, "argv", [target, *args])
    # configure_threads() runs first in a stage script: keep this process's thread count and environment.
    monkeypatch.setenv("PHI4_THREADS", str(torch.get_num_threads()))
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    try:
        with pytest.raises(Parsed) as parsed:
            if module:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(target, run_name="__main__")
        assert parsed.value.extras == [], (target, parsed.value.extras)
    finally:
        monkeypatch.undo()


def check_command(monkeypatch, command: list[str]) -> None:
    program, *args = command
    if program == "bash":  # the dpo_effect section's own script; tests/test_dpo_effect.py checks its options
        assert (REPO / args[0]).is_file(), args[0]
        subprocess.run(["bash", "-n", str(REPO / args[0])], check=True)
        return
    assert program == "python", command
    if args[0] == "-m" and args[1] == "accelerate.commands.launch":
        launch = launch_command_parser().parse_args(args[2:])
        config = REPO / launch.config_file
        assert yaml.safe_load(config.read_text())["distributed_type"] in {"FSDP", "DEEPSPEED", "MULTI_GPU"}
        load_config_from_file(str(config))  # accelerate's own reading of every key
        check_command(monkeypatch, ["python", launch.training_script, *launch.training_script_args])
    elif args[:2] == ["bench/gpu_suite.py", "recipe"]:  # a recipe the next step reads: write it for real
        subprocess.run([sys.executable, *args], cwd=REPO, env=script_env(), check=True, timeout=60)
    elif args[0] == "-m":
        parse_only(monkeypatch, args[1], args[2:], module=True)
    else:
        script = REPO / args[0]
        assert script.is_file(), f"{args[0]} does not exist"
        parse_only(monkeypatch, str(script), args[1:])


@pytest.fixture(scope="module")
def commands(tmp_path_factory) -> list[list[str]]:
    return dry_run("--only", ALL_SECTIONS, str(tmp_path_factory.mktemp("suite")))


def test_the_default_suite_runs_the_four_sections_and_one_report():
    default = dry_run()
    scripts = [" ".join(c[1:3]) for c in default]
    assert any("model_throughput.py" in s for s in scripts)
    assert sum("accelerate.commands.launch" in s for s in scripts) == 2
    assert any(c[1:3] == ["bench/gpu_suite.py", "vllm16k"] for c in default)
    recipe = next(c for c in default if c[1:3] == ["bench/gpu_suite.py", "recipe"])
    assert recipe[-4:] == ["--set", "backend=vllm", "--set", "backend_kwargs={}"]
    assert any("run_pts.py" in c[1] and c[2] == recipe[4] for c in default)  # PTS reads the vLLM recipe
    assert default[-1][1:3] == ["bench/gpu_suite.py", "report"]
    assert not any("pts_full" in " ".join(c) or c[0] == "bash" for c in default)  # the long runs only on request


def test_every_command_line_names_real_files_and_arguments_its_parser_accepts(commands, monkeypatch):
    assert len(commands) >= 17
    for command in commands:
        check_command(monkeypatch, command)


def test_the_check_catches_a_renamed_flag_recipe_or_config(monkeypatch):
    sft = ["python", "src/phi4_recipes/run_sft.py", "recipes/tiny/sft.yaml", "--output_dir", "outputs/x"]
    check_command(monkeypatch, sft)
    with pytest.raises(BaseException, match="max_stepz|unknown|unrecognized"):
        check_command(monkeypatch, [*sft, "--max_stepz", "3"])
    with pytest.raises(BaseException, match="sft_renamed.yaml"):
        check_command(monkeypatch, ["python", "src/phi4_recipes/run_sft.py", "recipes/tiny/sft_renamed.yaml"])
    with pytest.raises(FileNotFoundError, match="zero4.yaml"):
        check_command(monkeypatch, ["python", "-m", "accelerate.commands.launch", "--config_file",
                                    "recipes/accelerate_configs/zero4.yaml", *sft[1:]])
    with pytest.raises(SystemExit):
        check_command(monkeypatch, ["python", "bench/gpu_suite.py", "report"])  # its OUT argument missing


def test_the_report_tables_what_ran(tmp_path):
    """The table reads what each step wrote: status.tsv (name, exit, seconds) and the steps' JSON files."""
    (tmp_path / "status.tsv").write_text("vllm16k\t0\t41\nsft_zero3\t1\t20\n")
    (tmp_path / "vllm16k.json").write_text(
        '{"max_position_embeddings": 16384, "rope_theta": 250000.0, "prompt_tokens": 16000, "generated": 16, '
        '"load_seconds": 30.5, "greedy_prefix_equal_to_transformers": 16}')
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    text = gpu_suite.report(tmp_path, results)
    assert "| vllm16k | 0 | 41 | max_model_len 16384, prompt 16000, 16 greedy tokens, first 16 equal" in text
    assert f"| sft_zero3 | 1 | 20 | see {tmp_path / 'sft_zero3.log'} |" in text
    assert results.read_text().startswith("# Benchmark results\n") and results.read_text().endswith(text)
    assert Path(tmp_path / "table.md").read_text() == text


def test_the_sft_check_loads_each_checkpoint_and_names_the_missing_ones(tmp_path):
    """init-tiny writes the checkpoint the SFT runs start from; check-sft opens each run's output with plain
    transformers and reports a run that left none (here only `plain` exists: the initial weights)."""
    gpu_suite.init_tiny(tmp_path / "plain")
    (tmp_path / "plain" / "manifest.json").write_text('{"distributed_type": "NO", "log_history": [{"loss": 6.9}]}')
    runs = gpu_suite.check_sft(tmp_path)
    assert runs["plain"] == {"loads": True, "distributed_type": "NO", "fsdp_units": None, "losses": [6.9],
                             "max_abs_weight_diff_vs_plain": 0.0}
    assert runs["fsdp"] == {"loads": False, "error": f"no checkpoint in {tmp_path / 'fsdp'}"}
    assert not runs["zero3"]["loads"]
