"""notebooks/colab_quickstart.ipynb runs top to bottom on the CPU with the tiny recipes (SCALE="tiny", QUICK):
the notebook's parameter cell is replaced, as papermill does, and nbclient executes every cell."""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "colab_quickstart.ipynb"


def with_parameters(notebook, **values):
    [cell] = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    cell.source += "\n# injected by the test\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    return notebook


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_colab_notebook_runs_top_to_bottom_with_the_tiny_recipes(tmp_path):
    notebook = with_parameters(nbformat.read(NOTEBOOK, as_version=4), SCALE="tiny", QUICK=True,
                               RUN_DIR=str(tmp_path / "run"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for stage in ("sft", "pts", "dpo", "eval_sft", "eval_dpo_pts"):
        assert f"{stage}: " in outputs, stage
    assert (tmp_path / "run" / "eval_dpo_pts" / "eval.json").is_file()
    assert "tiny_arithmetic" in outputs
