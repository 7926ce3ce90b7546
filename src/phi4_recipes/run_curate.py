"""Curate web documents: HTML -> text -> language id -> corruption filters -> quality classifier ->
decontamination -> long-context tags -> exact + MinHash dedup -> parquet shards, with datatrove.

Usage:
    python src/phi4_recipes/run_curate.py recipes/curate/tiny.yaml [--key value ...]
    python src/phi4_recipes/run_curate.py --config recipes/curate/tiny.yaml --tasks 4 --workers 4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `phi4_recipes` importable from src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phi4_recipes.configs import parse_recipe  # noqa: E402
from phi4_recipes.cpu_threads import configure_threads  # noqa: E402
from phi4_recipes.curate.options import CurateConfig
from phi4_recipes.curate.pipeline import run_curation  # noqa: E402
from phi4_recipes.logs import setup_logging  # noqa: E402


def main(config: CurateConfig) -> dict:
    logger = setup_logging()
    logger.info("curating %s -> %s with %s executor (%d tasks)", config.input_dir, config.output_dir,
                config.executor, config.tasks)
    stats = run_curation(config)
    if stats:
        logger.info("stats written to %s", Path(config.output_dir) / "curate_stats.json")
    return stats


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    (curate_config,) = parse_recipe(CurateConfig)
    print(json.dumps(main(curate_config), indent=1, ensure_ascii=False))
