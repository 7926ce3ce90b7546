"""The PTS algorithm stays apart from its runner: ``phi4_recipes.pts`` core modules read no files, load no
model and never import ``pts.runner`` or ``pts.reference``; the runner takes plain values, never a script's
options. (The same rule as an import-linter contract would state, checked here so it holds without one.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PTS = Path(__file__).resolve().parents[1] / "src" / "phi4_recipes" / "pts"
# pts/options.py is run_pts's options (the algorithm's knobs plus a producer's), beside the package, not in it.
CORE = sorted(path for path in PTS.glob("*.py") if path.name != "options.py")
# The core may use the standard library and the project's bottom-layer helpers, nothing else.
CORE_MAY_IMPORT = {"phi4_recipes.hashing", "phi4_recipes.jsonl", "phi4_recipes.logs"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(PTS.parents[1]).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module)
    return names


def test_the_core_is_found():
    assert {p.stem for p in CORE} >= {"config", "estimator", "pairs", "protocols", "result", "search", "stats"}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_modules_import_only_the_standard_library_and_the_core(path):
    outside = set()
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__" or name in CORE_MAY_IMPORT:
            continue
        parts = name.split(".")
        if parts[:2] == ["phi4_recipes", "pts"] and (len(parts) == 2 or f"{parts[2]}.py" in {p.name for p in CORE}):
            continue
        outside.add(name)
    assert outside == set(), f"{path.name} imports {sorted(outside)}: the search must not depend on them"


@pytest.mark.parametrize("path", sorted((PTS / "runner").glob("*.py")), ids=lambda p: p.name)
def test_runner_takes_plain_values_not_a_scripts_options(path):
    assert not any(name.startswith(("phi4_recipes.configs", "phi4_recipes.pts.options"))
                   for name in imported_modules(path))
