"""The built wheel carries its own resources: chat template, lm-eval tasks and the leaderboard's report numbers.

The wheel is installed without dependencies into a fresh venv outside the checkout; a .pth line lends it
this venv's site-packages for torch, transformers and lm-eval. A directory added by a .pth line does not
have its own .pth files processed, so this venv's editable install of the checkout stays out of sight.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "tests" / "fixtures" / "eval" / "results" / "sft.json"

# Run in the fresh venv, from a folder outside the checkout: everything it touches comes from the wheel.
CHECK = """
import json, sys
import phi4_recipes, phi4_recipes.tokenizer, phi4_recipes.evaluation.leaderboard as leaderboard
from lm_eval.tasks import TaskManager
from phi4_recipes.evaluation.registry import LOCAL_TASKS_DIR, load_registry
from phi4_recipes.tokenizer import build_phi4_tokenizer

chat = build_phi4_tokenizer().apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                                  add_generation_prompt=True)
task = TaskManager(include_path=str(LOCAL_TASKS_DIR), include_defaults=False).load(["phi4_tiny_ifeval"])
docs = list(task["tasks"]["phi4_tiny_ifeval"].eval_docs)
rows, titles = leaderboard.build_leaderboard([sys.argv[1]])
print(json.dumps({
    "package": phi4_recipes.__file__, "tasks_dir": str(LOCAL_TASKS_DIR), "chat": chat,
    "benchmarks": len(load_registry()), "ifeval_docs": len(docs),
    "reference_rows": [row.label for row in rows if row.reference],
    "table": leaderboard.to_markdown(rows, titles),
}))
"""


def _build_wheel(out: Path) -> Path:
    # A copy of the sources, so the build leaves no build/ or egg-info in the shared checkout.
    source = out / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (out / "dist").glob("phi4_recipes-*.whl")
    return wheel


def _fresh_venv(root: Path) -> tuple[Path, Path]:
    """A venv without packages whose site-packages lends this one's: (its python, its site-packages)."""
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    lent = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(purelib, "lent_site_packages.pth").write_text("\n".join(dict.fromkeys(lent)) + "\n")
    return python, Path(purelib)


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_finds_its_resources(tmp_path):
    wheel = _build_wheel(tmp_path / "build")
    python, site_packages = _fresh_venv(tmp_path / "venv")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    # --target installs beside whatever this venv has (its editable phi4-recipes is neither seen nor touched).
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(site_packages), str(wheel)], check=True, capture_output=True, env=env, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(RESULT, elsewhere / "sft.json")
    run = subprocess.run([str(python), "-c", CHECK, "sft.json"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])

    venv_root = (tmp_path / "venv").resolve()
    assert Path(found["package"]).resolve().is_relative_to(venv_root)
    assert Path(found["tasks_dir"]).resolve().is_relative_to(venv_root)
    assert found["chat"] == "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>"
    assert found["benchmarks"] >= 11 and found["ifeval_docs"] == 20
    assert found["reference_rows"] == ["phi-4 (report)", "phi-4 SFT (report)", "phi-4 SFT + PTS-DPO (report)"]
    assert "| *phi-4 (report)* | 84.8 |" in found["table"]
