"""Shared by tests/test_synth_*.py: run a workflow through run_synth.main on a few rows, read what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.synth.options import SynthScriptArguments


def run_workflow(tmp_path: Path, workflow: str, rows: list[dict], name: str = "run", **overrides) -> dict:
    from phi4_recipes.run_synth import main

    data = write_jsonl(tmp_path / f"{name}-input.jsonl", rows)
    args = SynthScriptArguments(workflow=workflow, dataset_name=str(data), output_dir=str(tmp_path / name),
                                **overrides)
    main(args)
    return read_outputs(tmp_path / name)


def read_outputs(folder: Path) -> dict:
    def rows(file):
        path = folder / file
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    return {"data": rows("data.jsonl"), "dropped": rows("dropped.jsonl"), "bad": rows("bad_rows.jsonl"),
            "report": json.loads((folder / "report.json").read_text())}


def source_ids(out: dict) -> set[str]:
    """Every input id the run accounted for: a kept row's source, a drop, or a bad row."""
    ids = {row["provenance"]["source_id"] for row in out["data"]}
    ids |= {d["id"].split("/")[0] for d in out["dropped"]} | {b["id"] for b in out["bad"]}
    return ids


def assert_provenance(out: dict, workflow: str, generator: str | None) -> None:
    for row in out["data"]:
        p = row["provenance"]
        assert p["workflow"] == workflow and p["generator"] == generator and p["seed"] == 42
        assert p["source_id"] and isinstance(p["scores"], dict)
        assert all("@v1" in tag for tag in p["prompts"])
        assert row["id"].startswith(p["source_id"] + "/")
