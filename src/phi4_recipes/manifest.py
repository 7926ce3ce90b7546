"""The manifest each stage writes beside its output: what ran, on what, with which versions."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

PACKAGES = ("phi4-recipes", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "lm_eval",
            "liger-kernel", "deepspeed", "vllm")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def write_manifest(output_dir: str | Path, *, stage: str, recipe_path: str | None, configs: dict, seed: int,
                   inputs: list[dict], extra: dict | None = None) -> Path:
    """Write `<output_dir>/manifest.json`; `configs` maps a name to a resolved dataclass."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    manifest = {
        "stage": stage,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe_path": recipe_path,
        "recipe": Path(recipe_path).read_text(encoding="utf-8") if recipe_path else None,
        "resolved_config": {name: _jsonable(cfg) for name, cfg in configs.items()},
        "seed": seed,
        "inputs": inputs,
        "versions": package_versions(),
        "git_commit": git_commit(),
        **(extra or {}),
    }
    path = output / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(output_dir: str | Path) -> dict | None:
    path = Path(output_dir) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
