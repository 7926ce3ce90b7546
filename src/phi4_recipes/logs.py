"""Logging set-up: one project logger, with time, level and module, that every stage and module logs under."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "phi4_recipes"


def setup_logging(level: int | str = logging.INFO) -> logging.Logger:
    """Log lines with time, level and module to stdout, under the one project logger; returns it."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(handler, "_phi4_recipes", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._phi4_recipes = True
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def get_logger(module_name: str) -> logging.Logger:
    """A child of the project logger for one module (``phi4_recipes.pts.runner`` and the like)."""
    if module_name == LOGGER_NAME or module_name.startswith(LOGGER_NAME + "."):
        return logging.getLogger(module_name)
    return logging.getLogger(f"{LOGGER_NAME}.{module_name.rsplit('.', 1)[-1]}")
