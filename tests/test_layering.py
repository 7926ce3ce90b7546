"""The layering of DESIGN.md, checked by import-linter against .importlinter (also run by CI)."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    out = subprocess.run([lint_imports, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


# Run in a fresh interpreter: which project files does a DPO run load, from recipe to saved checkpoint?
_LOADED_BY_RUN_DPO = r"""
import ast, json, sys
from pathlib import Path
import phi4_recipes.run_dpo

def has_code(path):
    # Package markers that only re-export names (imports, a docstring, __all__, __version__) are not read.
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)):
            continue
        if isinstance(node, ast.Assign) and all(getattr(t, "id", "") in ("__all__", "__version__") for t in node.targets):
            continue
        return True
    return False

modules = {name: module.__file__ for name, module in sys.modules.items()
           if name.startswith("phi4_recipes") and getattr(module, "__file__", None)}
print(json.dumps(sorted(name for name, path in modules.items() if has_code(path))))
"""


def test_a_dpo_run_reads_at_most_twelve_project_files_and_no_evaluation_code():
    out = subprocess.run([sys.executable, "-c", _LOADED_BY_RUN_DPO], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(loaded) <= 12, loaded
    assert not [name for name in loaded if name.startswith("phi4_recipes.evaluation")]
