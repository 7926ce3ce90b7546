"""The layering of docs/ARCHITECTURE.md, checked by import-linter against .importlinter (also run by CI)."""

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


def test_a_dpo_run_reads_at_most_seventeen_project_files_and_no_evaluation_code():
    out = subprocess.run([sys.executable, "-c", _LOADED_BY_RUN_DPO], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # 13 before io.py was split by job into jsonl, hashing, logs and resources (one job per file), and before
    # cpu_threads (every entry point sets its thread count).
    assert len(loaded) <= 17, loaded
    assert not [name for name in loaded if name.startswith("phi4_recipes.evaluation")]


# lm-eval loads each task's utils.py by file path, so import-linter (which follows packages) never sees what
# they import. They run inside evaluation/'s lm-eval call: they may import only the layers below evaluation.
TASKS = REPO / "src" / "phi4_recipes" / "resources" / "lm_eval_tasks"


def layers_below(module: str) -> set[str]:
    """The modules of every layer under `module` in .importlinter's layers contract."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    layers = [line.strip() for line in config["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    layers = [[name.strip() for name in line.replace(":", "|").split("|")] for line in layers]
    index = next(i for i, layer in enumerate(layers) if module in layer)
    return {name for layer in layers[index + 1:] for name in layer}


def project_imports(source: str) -> list[str]:
    """Every phi4_recipes module a file imports, at any depth (imports inside functions count)."""
    import ast

    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return [name for name in names if name.split(".")[0] == "phi4_recipes"]


def imports_above(source: str, allowed: set[str]) -> list[str]:
    return [name for name in project_imports(source)
            if not any(name == layer or name.startswith(layer + ".") for layer in allowed)]


def test_lm_eval_task_files_import_only_layers_below_evaluation():
    allowed = layers_below("phi4_recipes.evaluation")
    assert {"phi4_recipes.judge", "phi4_recipes.verify", "phi4_recipes.data"} <= allowed
    task_files = sorted(TASKS.glob("*/*.py"))
    assert len(task_files) >= 6
    seen = set()
    for path in task_files:
        source = path.read_text(encoding="utf-8")
        assert imports_above(source, allowed) == [], path
        seen.update(project_imports(source))
    assert {"phi4_recipes.judge.client", "phi4_recipes.verify.code_check", "phi4_recipes.data.tiny"} <= seen
    # The check itself catches an import from above: a stage script, evaluation itself.
    upward = ("from phi4_recipes.run_pipeline import main\nimport phi4_recipes.run_eval\n"
              "def f():\n    from phi4_recipes.evaluation.results import read_results\n")
    assert imports_above(upward, allowed) == ["phi4_recipes.run_pipeline", "phi4_recipes.run_eval",
                                              "phi4_recipes.evaluation.results"]


def test_a_math_oracle_loads_no_code_sandbox():
    """verify/ loads its names on first use: grading a math answer never imports the code sandbox."""
    code = ("import sys\nfrom phi4_recipes.verify import make_oracle\n"
            "assert make_oracle('math', '42').verdict('so \\\\boxed{42}').passed\n"
            "print(sorted(m for m in sys.modules if m.startswith('phi4_recipes.verify')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = out.stdout.strip().splitlines()[-1]
    assert "math_oracle" in loaded
    for heavy in ("sandbox", "code_check", "_peer", "_wire"):
        assert f"verify.{heavy}'" not in loaded, loaded


# A module a reader can hold in mind, and functions that each do one thing (issue 36's limits).
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 60


def oversized(root: Path) -> list[str]:
    """Every module over MAX_MODULE_LINES lines and every function over MAX_FUNCTION_LINES, under ``root``."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(root)}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_module_over_500_lines_and_no_function_over_60(tmp_path):
    assert oversized(REPO / "src") == []
    # The check itself finds both kinds.
    long_function = "def f():\n" + "    x = 1\n" * 61
    (tmp_path / "big.py").write_text(long_function + "\n" * 450)
    assert [entry.split(":")[0] for entry in oversized(tmp_path)] == ["big.py", "big.py"]
