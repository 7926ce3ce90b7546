"""The README's stage-by-stage commands ("Stages and recipes") are the commands `make tiny` runs, in an order
that works on a fresh clone, and they run as written.

The first test holds the block to recipes/tiny/pipeline.yaml: the same stages, each with the pipeline's script,
recipe and effective options (recipe values overlaid with the command's), every stage after the stages it
needs, each stand-in server started before the stage that talks to it. The second runs the block's commands
verbatim with bash in a scratch checkout, from curation to midtraining (the stages up to the one that failed on
a fresh clone); the later stages train for minutes at these budgets and run in `make tiny`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phi4_recipes.configs import parse_recipe
from phi4_recipes.run_pipeline import PipelineArguments

REPO = Path(__file__).resolve().parents[1]
RUN = "outputs/tiny"


def readme_block() -> list[str]:
    """The command lines of the first ```bash block under "## Stages and recipes"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Stages and recipes"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no ```bash block under 'Stages and recipes'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _segments(line: str) -> list[tuple[list[str], bool]]:
    """One command line -> its shell commands as argv lists, each flagged when started in the background."""
    code = line.split("  #")[0]
    out = []
    for part in re.split(r"(;|&(?!&))", code):
        if part in (";", "&"):
            if part == "&" and out:
                out[-1] = (out[-1][0], True)
            continue
        if part.strip():
            out.append((shlex.split(part), False))
    return out


def readme_commands() -> list[tuple[list[str], str | None]]:
    """The stage commands in order, each with the module of the server running while it runs (or None)."""
    commands, server = [], None
    for line in readme_block():
        for argv, background in _segments(line):
            if background:
                assert argv[:2] == ["python", "-m"], argv
                server = (argv[2], argv[argv.index("--port") + 1])
            elif argv[0] == "kill":
                server = None
            elif argv[0] == "python" and argv[1].endswith(".py"):
                commands.append((argv, server))
    return commands


def _options(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    positional, options, i = [], {}, 0
    while i < len(argv):
        if argv[i].startswith("--"):
            options[argv[i][2:].replace("-", "_")] = argv[i + 1]
            i += 2
        else:
            positional.append(argv[i])
            i += 1
    return positional, options


def _effective(recipe: str | None, options: dict) -> dict[str, str]:
    """The recipe's values overlaid with the command's, as strings (how a command line gives them)."""
    values = yaml.safe_load((REPO / recipe).read_text()) if recipe else {}
    merged = {k: v for k, v in {**values, **options}.items() if not isinstance(v, dict | list)}
    return {k.replace("-", "_"): str(v).replace(f"{RUN}/recipes/", "recipes/") for k, v in merged.items()}


def pipeline_stages() -> list[dict]:
    (args,) = parse_recipe(PipelineArguments, argv=[str(REPO / "recipes/tiny/pipeline.yaml")])
    assert args.run_dir == args.rebase == RUN
    return [{**stage, "args": {k: str(v).replace("{run}", RUN).replace("{seed}", str(args.seed))
                               for k, v in stage.get("args", {}).items()},
             "argv": [a.replace("{run}", RUN) for a in stage.get("argv", [])]} for stage in args.stages]


def test_readme_block_is_every_pipeline_stage_in_a_working_order():
    stages = pipeline_stages()
    done: list[str] = []
    for argv, server in readme_commands():
        script, *rest = argv[1:]
        positional, options = _options(rest)
        recipe = positional[0] if positional and positional[0].endswith(".yaml") else None
        mine = _effective(recipe, options)
        matches = [s for s in stages if s["script"] == script and s.get("recipe") == recipe
                   and _effective(recipe, s["args"]).get("output_dir") == mine.get("output_dir")
                   and s["argv"] == positional[1 if recipe else 0:] and s["name"] not in done]
        assert len(matches) == 1, f"README command {' '.join(argv)}: no single pipeline stage like it"
        stage = matches[0]
        theirs = _effective(recipe, {k: v for k, v in stage["args"].items() if "{url}" not in v})
        assert mine == theirs, f"{stage['name']}: README {mine} != pipeline {theirs}"
        if stage.get("server"):
            # The pipeline passes the URL of the stand-in it starts; the README starts it where the recipe points.
            assert server is not None and server[0] == stage["server"]["module"], stage["name"]
            url_key = next(k for k, v in stage["args"].items() if "{url}" in v)
            assert mine[url_key] == f"http://127.0.0.1:{server[1]}/v1", stage["name"]
        missing = [need for need in stage.get("needs", []) if need not in done]
        assert not missing, f"README runs {stage['name']} before {missing}, which it reads"
        done.append(stage["name"])
    assert sorted(done) == sorted(s["name"] for s in stages), "every stage of make tiny is in the README"


@pytest.mark.slow
def test_readme_commands_run_as_written_from_a_fresh_clone_to_midtraining(tmp_path):
    lines = readme_block()
    last = next(i for i, line in enumerate(lines) if "recipes/tiny/midtrain.yaml" in line)
    for folder in ("recipes", "chat_templates", "data/tiny", "tests/fixtures/html", "tests/fixtures/curate"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    for link in ("src", "eval"):
        (tmp_path / link).symlink_to(REPO / link)
    script = tmp_path / "stages.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(lines[: last + 1]) + "\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO / "src"), "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    run = tmp_path / RUN
    assert (run / "curate" / "curate_stats.json").is_file() and (run / "synth" / "rewrite" / "data.jsonl").is_file()
    for stage in ("pretrain", "midtrain"):
        assert (run / stage / "manifest.json").is_file() and (run / stage / "model.safetensors").is_file(), stage
    assert "`gradient_checkpointing` is deprecated" not in proc.stderr, "recipes use transformers 5's key"


def test_every_scripts_usage_line_names_both_forms_of_the_recipe(capsys):
    """argparse's own usage listed every option and no recipe, which it does not parse itself."""
    from phi4_recipes.configs import ModelConfig, ScriptArguments, SFTConfig

    with pytest.raises(SystemExit):
        parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=["--help"])
    usage = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert usage[0].startswith("usage: ") and usage[0].endswith(" recipe.yaml [--key value ...]")
    assert usage[1].strip().endswith(" --config recipe.yaml [--key value ...]") and len(usage) == 2
