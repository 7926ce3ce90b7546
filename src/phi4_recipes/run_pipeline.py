"""Run a whole recipe, stage after stage, into one run folder (the tiny end-to-end run is `make tiny`).

    python src/phi4_recipes/run_pipeline.py recipes/tiny/pipeline.yaml [--run_dir outputs/tiny] [--seed 42]

Each stage is its own script run as a subprocess (`run_pretrain.py recipe --output_dir <run>/<stage> ...`),
so a stage runs exactly as it does by hand. A stage that finished leaves `<run>/<stage>/pipeline.json`
with its fingerprint: sha256 of the script, its recipe text, the resolved arguments, the files it names and
the fingerprints of the stages it needs. A rerun skips a stage whose fingerprint is unchanged; a stage
without that file (never run, or killed midway) has its folder removed and runs from the start, which
makes a killed run finish with the same results as an uninterrupted one (every stage is seeded, and the
thread count is fixed). A changed recipe re-runs its stage and, through the fingerprints, every stage after it.

At the end: a per-stage time table, the leaderboard (Markdown printed, HTML with charts written by
eval/leaderboard.py) and the paired differences between stages on the same held-out items, in words.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from phi4_recipes.configs import parse_recipe
from phi4_recipes.configs.pipeline import PipelineArguments
from phi4_recipes.evaluation.paired import paired_report
from phi4_recipes.io import sha256_files
from phi4_recipes.recipe_checks import require_output_dir

REPO = Path(__file__).resolve().parents[2]
MARKER = "pipeline.json"
console = Console(stderr=True, highlight=False)


# -- fingerprints ------------------------------------------------------------------------------------------

def _substitute(value, mapping: dict[str, str]):
    if isinstance(value, str):
        for key, replacement in mapping.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    return value


def _file_hash(path: str) -> str:
    resolved = REPO / path if not Path(path).is_absolute() else Path(path)
    return sha256_files([resolved]) if resolved.is_file() else "missing"


def rebased(path: str | None, args: PipelineArguments, run: Path) -> str | None:
    """A copy of the recipe file `path` under <run>/recipes/ (recipes/tiny/sft.yaml -> <run>/recipes/tiny/sft.yaml)
    in which every `<rebase>/` becomes `<run>/`: one recipe set serves any number of run folders (seeds)."""
    if path is None or not args.rebase:
        return path
    text = (REPO / path).read_text(encoding="utf-8").replace(args.rebase.rstrip("/") + "/", str(run) + "/")
    relative = Path(path).relative_to(Path(path).anchor) if Path(path).is_absolute() else Path(path)
    if relative.parts[0] == "recipes" and len(relative.parts) > 1:
        relative = Path(*relative.parts[1:])
    copy = run / "recipes" / relative
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not copy.is_file() or copy.read_text(encoding="utf-8") != text:
        copy.write_text(text, encoding="utf-8")
    return str(copy)


def stage_fingerprint(stage: dict, args: dict, argv: list[str], upstream: dict[str, str]) -> str:
    """sha256 over what decides a stage's output; equal fingerprints mean the finished output can be reused."""
    script = stage["script"]
    payload = {
        "script": script if script.startswith("-m ") else {script: _file_hash(script)},
        "recipe": _file_hash(stage["recipe"]) if stage.get("recipe") else None,
        "args": args,
        "argv": argv,
        "files": [_file_hash(f) for f in stage.get("files", [])],
        "needs": {need: upstream[need] for need in stage.get("needs", [])},
        "server": stage.get("server"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def finished(folder: Path, fingerprint: str) -> dict | None:
    marker = folder / MARKER
    if not marker.is_file():
        return None
    record = json.loads(marker.read_text(encoding="utf-8"))
    return record if record.get("fingerprint") == fingerprint else None


# -- running one stage -------------------------------------------------------------------------------------

def stage_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def command_of(stage: dict, args: dict, argv: list[str]) -> list[str]:
    script = stage["script"]
    cmd = [sys.executable, *script.split(" ", 1)] if script.startswith("-m ") else [sys.executable, script]
    if stage.get("recipe"):
        cmd.append(stage["recipe"])
    cmd += argv
    for key, value in args.items():
        if isinstance(value, bool):
            cmd += [f"--{key}", str(value).lower()]
        elif isinstance(value, list):
            cmd += [f"--{key}", *map(str, value)]
        else:
            cmd += [f"--{key}", str(value)]
    return cmd


@contextmanager
def helper_server(server: dict | None, folder: Path, env: dict, log):
    """Start a helper (a stand-in model or judge endpoint) that writes its port or URL to a file; yield its URL."""
    if server is None:
        yield ""
        return
    url_file = folder.parent / f".{folder.name}.url"
    url_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", server["module"], server.get("file_flag", "--url-file"),
                                str(url_file)], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (url_file.is_file() and url_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"helper {server['module']} did not start (see the stage log)")
            time.sleep(0.05)
        yield server.get("url", "{file}").replace("{file}", url_file.read_text().strip())
    finally:
        process.terminate()
        process.wait(timeout=30)
        url_file.unlink(missing_ok=True)


def run_stage(stage: dict, args: dict, argv: list[str], folder: Path, log_path: Path, env: dict) -> float:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log, helper_server(stage.get("server"), folder, env, log) as url:
        cmd = command_of(stage, _substitute(args, {"url": url}), _substitute(argv, {"url": url}))
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        with console.status(f"[bold]{stage['name']}[/] running ({log_path})"):
            code = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
        raise SystemExit(f"stage {stage['name']} failed (exit {code}); last lines of {log_path}:\n{tail}")
    return time.monotonic() - start


# -- the run -----------------------------------------------------------------------------------------------

def main(args: PipelineArguments) -> Path:
    require_output_dir(args.run_dir, "run_dir", args.recipe_path)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    env = stage_env(args.threads)
    mapping = {"run": str(run), "seed": str(args.seed)}
    fingerprints: dict[str, str] = {}
    times: list[tuple[str, str, float]] = []
    console.rule(f"pipeline {args.recipe_path} -> {run} (seed {args.seed})")
    for index, stage in enumerate(args.stages, 1):
        name = stage["name"]
        stage_args = _substitute(stage.get("args", {}), mapping)
        argv = _substitute(stage.get("argv", []), mapping)
        stage = {**stage, "recipe": rebased(stage.get("recipe"), args, run),
                 "files": [*_substitute(stage.get("files", []), mapping),
                           *(rebased(t, args, run) for t in stage.get("templates", []))]}
        fingerprint = stage_fingerprint(stage, stage_args, argv, fingerprints)
        fingerprints[name] = fingerprint
        folder = run / name
        record = None if args.force else finished(folder, fingerprint)
        if args.only is not None and name not in args.only:
            continue
        missing = [need for need in stage.get("needs", []) if finished(run / need, fingerprints[need]) is None]
        if args.only is not None and missing and record is None:
            raise SystemExit(f"stage {name} needs {missing}, which have not finished with these inputs: run them first")
        if record is not None:
            console.print(f"[{index}/{len(args.stages)}] [green]{name}[/]: finished earlier with the same inputs, "
                          f"skipped ({record['seconds']:.1f} s then)")
            times.append((name, "skipped", record["seconds"]))
        else:
            if folder.exists():
                shutil.rmtree(folder)  # a partial or stale output: start the stage afresh
            console.print(f"[{index}/{len(args.stages)}] [bold]{name}[/]: {stage['script']} {stage.get('recipe') or ''}")
            seconds = run_stage(stage, stage_args, argv, folder, run / "logs" / f"{name}.log", env)
            folder.mkdir(parents=True, exist_ok=True)
            marker = {"stage": name, "fingerprint": fingerprint, "seconds": round(seconds, 1), "seed": args.seed,
                      "threads": args.threads, "command": command_of(stage, stage_args, argv),
                      "needs": {n: fingerprints[n] for n in stage.get("needs", [])}}
            tmp = folder / (MARKER + ".tmp")
            tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            tmp.replace(folder / MARKER)  # written last and atomically: present means the stage finished
            console.print(f"    [green]done[/] in {seconds:.1f} s")
            times.append((name, "ran", seconds))
        if name == args.stop_after:
            break

    table = Table(title="time per stage")
    for column in ("stage", "this run", "seconds"):
        table.add_column(column)
    for name, status, seconds in times:
        table.add_row(name, status, f"{seconds:.1f}")
    table.add_row("total", "", f"{sum(s for _, _, s in times):.1f}")
    console.print(table)
    (run / "times.json").write_text(json.dumps([{"stage": n, "status": st, "seconds": round(s, 1)}
                                                for n, st, s in times], indent=2) + "\n", encoding="utf-8")

    board = args.leaderboard
    done = {name for name, _, _ in times}
    if board and all(stage in done for stage in board["stages"]):
        out = run / "leaderboard"
        out.mkdir(exist_ok=True)
        report, records = paired_report([{s: run / s for s in board["stages"]}], board["labels"], board["stages"],
                                        board["benchmarks"], board.get("compare", []))
        (out / "paired.md").write_text(report, encoding="utf-8")
        (out / "paired.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
        board_md = out / "leaderboard.md"
        print((board_md.read_text(encoding="utf-8") if board_md.is_file() else "") + report)
    return run


if __name__ == "__main__":
    (pipeline_args,) = parse_recipe(PipelineArguments)
    main(pipeline_args)
