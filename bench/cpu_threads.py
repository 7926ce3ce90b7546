"""Two tiny SFT runs side by side against one after the other, with torch's old thread default and with
phi4_recipes.cpu_threads (issue 35, "CPU threads").

    python bench/cpu_threads.py [--steps 20] [--work outputs/bench_cpu_threads] [--arms old,one,auto]

Each run is `run_sft.py recipes/tiny/sft.yaml` from the same tiny initial checkpoint for --steps steps; its
seconds per step are the Trainer's own train_runtime / steps (model loading and tokenization excluded). Arms:
  old   torch's default count (one thread per core, what every stage used before), as PHI4_THREADS
  one   PHI4_THREADS=1 for each run (what the README says for a second seed beside the first)
  auto  no setting: the share rule of cpu_threads (runs registered on the same CPUs split them)
Each arm runs one alone, then two started together. The 1-minute load average before and after each
measurement is printed with it: other work on the machine shows there, and such numbers must be rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env_for(threads: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PHI4_THREADS")}
    env.update(PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    if threads is not None:
        env["PHI4_THREADS"] = threads
    return env


def torch_default_threads() -> int:
    """The count torch picks on its own in a fresh process with no OMP_NUM_THREADS: the old behaviour."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env_for(None),
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def start_sft(init: Path, out: Path, steps: int, threads: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "src/phi4_recipes/run_sft.py", "recipes/tiny/sft.yaml", "--model_name_or_path", str(init),
           "--max_steps", str(steps), "--warmup_steps", "0", "--logging_steps", str(steps),
           "--dataset_max_rows", str(steps * 32), "--save_strategy", "no", "--output_dir", str(out)]
    log = open(out.with_suffix(".log"), "w")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(cmd, cwd=REPO, env=env_for(threads), stdout=log, stderr=subprocess.STDOUT)


def seconds_per_step(out: Path, steps: int) -> tuple[float, str]:
    log = out.with_suffix(".log").read_text()
    metrics = re.findall(r"'train_runtime': '?([0-9.]+)", log)
    chosen = re.search(r"torch threads: (\d+) \(([^)]*)\)", log)
    if not metrics:
        raise RuntimeError(f"no train_runtime in {out.with_suffix('.log')}:\n{log[-2000:]}")
    return float(metrics[-1]) / steps, (chosen.group(1) if chosen else "?")


def measure(work: Path, init: Path, name: str, runs: int, steps: int, threads: str | None) -> dict:
    load_before = os.getloadavg()[0]
    outs = [work / f"{name}_{runs}_{i}" for i in range(runs)]
    started = time.perf_counter()
    procs = [start_sft(init, out, steps, threads) for out in outs]
    for proc, out in zip(procs, outs):
        if proc.wait() != 0:
            raise RuntimeError(f"{name}: run_sft failed, see {out.with_suffix('.log')}")
    wall = time.perf_counter() - started
    per_run = [seconds_per_step(out, steps) for out in outs]
    return {"arm": name, "runs": runs, "threads": [t for _, t in per_run], "s_per_step": [s for s, _ in per_run],
            "wall_s": wall, "load_before": load_before, "load_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "bench_cpu_threads")
    parser.add_argument("--arms", default="old,one,auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    init = args.work / "init"
    if not (init / "config.json").is_file():
        subprocess.run([sys.executable, "bench/gpu_suite.py", "init-tiny", str(init)], cwd=REPO, env=env_for("1"),
                       check=True)
    old = str(torch_default_threads())
    settings = {"old": old, "one": "1", "auto": None}
    rows = []
    for arm in args.arms.split(","):
        for runs in (1, 2):
            row = measure(args.work, init, arm, runs, args.steps, settings[arm])
            rows.append(row)
            print(json.dumps(row), flush=True)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\n{usable} usable CPUs, torch's default {old} threads, {args.steps} steps of tiny SFT per run\n")
    print("| arm | runs at once | threads per run | s/step per run | wall s | load avg before -> after |")
    print("|---|---:|---|---|---:|---|")
    for row in rows:
        print(f"| {row['arm']} | {row['runs']} | {', '.join(row['threads'])} | "
              f"{', '.join(f'{s:.2f}' for s in row['s_per_step'])} | {row['wall_s']:.0f} | "
              f"{row['load_before']:.2f} -> {row['load_after']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
