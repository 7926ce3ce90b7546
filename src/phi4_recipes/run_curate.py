"""Curate web documents: HTML -> text -> language id -> corruption filters -> quality classifier ->
decontamination -> long-context tags -> exact + MinHash dedup -> parquet shards, with datatrove.

Usage:
    python src/phi4_recipes/run_curate.py recipes/curate/tiny.yaml [--key value ...]
    python src/phi4_recipes/run_curate.py --config recipes/curate/tiny.yaml --tasks 4 --workers 4
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `phi4_recipes` importable from src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phi4_recipes.configs import split_cli_overrides  # noqa: E402
from phi4_recipes.curate.config import CurateConfig, load_config  # noqa: E402
from phi4_recipes.curate.pipeline import run_curation  # noqa: E402

logger = logging.getLogger("run_curate")


def parse_args(argv: list[str]) -> tuple[str, dict]:
    """Recipe path (positional or --config) and the remaining `--key value` overrides."""
    recipe, overrides = split_cli_overrides(argv)
    if recipe is None:
        raise SystemExit("usage: run_curate.py RECIPE.yaml [--key value ...]  (or --config RECIPE.yaml)")
    return recipe, overrides


def main(config: CurateConfig) -> dict:
    logger.info("curating %s -> %s with %s executor (%d tasks)", config.input_dir, config.output_dir,
                config.executor, config.tasks)
    stats = run_curation(config)
    if stats:
        logger.info("stats written to %s", Path(config.output_dir) / "curate_stats.json")
    return stats


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    recipe, overrides = parse_args(sys.argv[1:])
    summary = main(load_config(recipe, overrides))
    print(json.dumps(summary, indent=1, ensure_ascii=False))
