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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from phi4_recipes.configs import parse_recipe
from phi4_recipes.evaluation.paired import paired_report
from phi4_recipes.hashing import sha256_files
from phi4_recipes.recipe_checks import RecipeError, RecipeSource, require_output_dir

REPO = Path(__file__).resolve().parents[2]
MARKER = "pipeline.json"
console = Console(stderr=True, highlight=False)


# -- options -----------------------------------------------------------------------------------------------

STAGE_KEYS = {"name", "script", "recipe", "args", "argv", "needs", "files", "server", "templates"}
SERVER_KEYS = {"module", "file_flag", "url"}


@dataclass
class PipelineArguments(RecipeSource):
    """A run folder and the stages that fill it, in order; each stage writes `<run_dir>/<name>`."""

    run_dir: str = field(default="outputs/tiny", metadata={"help": "The run folder; every stage writes a subfolder."})
    rebase: str | None = field(
        default="outputs/tiny",
        metadata={"help": "The folder the stage recipes write to and read from; in a copy of each recipe (and of "
                  "each stage's `templates` files) written to <run_dir>/recipes/, it becomes run_dir, so one "
                  "recipe set serves any number of run folders (seeds)."})
    seed: int = field(default=42, metadata={"help": "Substituted for {seed} in the stages' args (the run's seed)."})
    threads: int | None = field(
        default=2,
        metadata={"help": "OMP/MKL threads of every stage. CPU float sums depend on how work is split across "
                  "threads, so fixing the count is what lets two machines reproduce each other's run."})
    stages: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={"help": "Each: name, script (a .py path or -m module), recipe, args ({key: value} passed as "
                  "--key value; {run}, {seed} and {url} are substituted), argv (positional arguments), needs "
                  "(earlier stages read), templates (more files to rebase, e.g. a mixture), files (inputs hashed into the fingerprint), server ({module, "
                  "file_flag, url}: a helper process started before the stage, its URL as {url})."})
    leaderboard: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "{stages: [...], labels: [...], benchmarks: [...], compare: [[a, b], ...]}: the eval "
                  "stages tabled at the end and the paired differences stated in words."})
    force: bool = field(default=False, metadata={"help": "Run every stage again, finished or not."})
    stop_after: str | None = field(default=None, metadata={"help": "Stop after this stage (quick partial runs)."})
    only: list[str] | None = field(
        default=None,
        metadata={"help": "Run just these stages (their needs must have finished); the others are left as they are."})

    def __post_init__(self):
        names = []
        for i, stage in enumerate(self.stages):
            where = f"stages[{i}]"
            if not isinstance(stage, dict) or "name" not in stage or "script" not in stage:
                raise RecipeError(f"{self.source}: {where} needs at least `name` and `script`, got {stage!r}")
            unknown = set(stage) - STAGE_KEYS
            if unknown:
                raise RecipeError(f"{self.source}: {where} ({stage['name']}): unknown keys {sorted(unknown)}; "
                                  f"known: {sorted(STAGE_KEYS)}")
            for need in stage.get("needs", []):
                if need not in names:
                    raise RecipeError(f"{self.source}: stage '{stage['name']}' needs '{need}', which is not an "
                                      f"earlier stage (earlier: {names})")
            if stage.get("server") is not None and set(stage["server"]) - SERVER_KEYS:
                raise RecipeError(f"{self.source}: stage '{stage['name']}': server keys are {sorted(SERVER_KEYS)}")
            if stage["name"] in names:
                raise RecipeError(f"{self.source}: stage name '{stage['name']}' appears twice")
            names.append(stage["name"])
        for name in self.only or []:
            if name not in names:
                raise RecipeError(f"{self.source}: only: '{name}' is not a stage ({names})")
        if self.stop_after is not None and self.stop_after not in names:
            raise RecipeError(f"{self.source}: stop_after '{self.stop_after}' is not a stage ({names})")


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

def _record_finished(folder: Path, marker: dict) -> None:
    """Write the stage's marker last and atomically: present means the stage finished."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MARKER)


def run_stages(args: PipelineArguments, run: Path) -> list[tuple[str, str, float]]:
    """Run (or skip, when finished with the same inputs) every stage in order; (stage, status, seconds) each."""
    env = stage_env(args.threads)
    mapping = {"run": str(run), "seed": str(args.seed)}
    fingerprints: dict[str, str] = {}
    times: list[tuple[str, str, float]] = []
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
            _record_finished(folder, {"stage": name, "fingerprint": fingerprint, "seconds": round(seconds, 1),
                                      "seed": args.seed, "threads": args.threads,
                                      "command": command_of(stage, stage_args, argv),
                                      "needs": {n: fingerprints[n] for n in stage.get("needs", [])}})
            console.print(f"    [green]done[/] in {seconds:.1f} s")
            times.append((name, "ran", seconds))
        if name == args.stop_after:
            break
    return times


def report_times(times: list[tuple[str, str, float]], run: Path) -> None:
    """The per-stage time table, printed and written to <run>/times.json."""
    table = Table(title="time per stage")
    for column in ("stage", "this run", "seconds"):
        table.add_column(column)
    for name, status, seconds in times:
        table.add_row(name, status, f"{seconds:.1f}")
    table.add_row("total", "", f"{sum(s for _, _, s in times):.1f}")
    console.print(table)
    (run / "times.json").write_text(json.dumps([{"stage": n, "status": st, "seconds": round(s, 1)}
                                                for n, st, s in times], indent=2) + "\n", encoding="utf-8")


def report_leaderboard(board: dict | None, done: set[str], run: Path) -> None:
    """Once every leaderboard stage has run: the paired differences, written and printed under the board."""
    if not board or not all(stage in done for stage in board["stages"]):
        return
    out = run / "leaderboard"
    out.mkdir(exist_ok=True)
    report, records = paired_report([{s: run / s for s in board["stages"]}], board["labels"], board["stages"],
                                    board["benchmarks"], board.get("compare", []))
    (out / "paired.md").write_text(report, encoding="utf-8")
    (out / "paired.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    board_md = out / "leaderboard.md"
    print((board_md.read_text(encoding="utf-8") if board_md.is_file() else "") + report)


def main(args: PipelineArguments) -> Path:
    require_output_dir(args.run_dir, "run_dir", args.recipe_path)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    console.rule(f"pipeline {args.recipe_path} -> {run} (seed {args.seed})")
    times = run_stages(args, run)
    report_times(times, run)
    report_leaderboard(args.leaderboard, {name for name, _, _ in times}, run)
    return run


if __name__ == "__main__":
    (pipeline_args,) = parse_recipe(PipelineArguments)
    main(pipeline_args)
