"""Run a stage script the way a user does (a subprocess from the repo root) and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def run_stage(script: str, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "src" / "phi4_recipes" / script), *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, env=script_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def logged_losses(output_dir: str | Path) -> list[tuple[int, float]]:
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]
