"""math_equal: answer extraction plus math-verify in a reusable, timeout-safe worker pool."""

import threading
import time

import pytest

from phi4_recipes.verify.limits import MAX_ANSWER_CHARS, MAX_COMPLETION_CHARS
from phi4_recipes.verify.math_oracle import MathVerifierPool, math_equal, math_equal_many, math_verdict
from phi4_recipes.verify.verdict import Verdict


@pytest.fixture(scope="module")
def pool():
    with MathVerifierPool(num_workers=2, timeout=5.0) as shared:
        yield shared


# (completion, reference, expected)
MATH_PAIRS = [
    # fractions, decimals, LaTeX forms
    ("So the result is \\boxed{\\frac{1}{2}}.", "0.5", True),
    ("\\boxed{\\dfrac34}", "0.75", True),
    ("\\boxed{\\frac{2}{4}}", "\\frac12", True),
    ("\\boxed{3/4}", "\\frac{3}{4}", True),
    ("\\boxed{0.333}", "\\frac{1}{3}", False),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True),
    ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", True),
    ("\\boxed{2\\sqrt{3}}", "3\\sqrt{2}", False),
    ("\\boxed{-\\frac{1}{2}}", "\\frac{1}{2}", False),
    ("\\boxed{\\pi}", "3.14159", False),
    ("\\boxed{2\\pi}", "\\pi \\cdot 2", True),
    # integers, thousands separators, near misses
    ("The total is \\boxed{1,000} dollars.", "1000", True),
    ("\\boxed{1000}", "10000", False),
    ("\\boxed{3}", "3.0", True),
    ("\\boxed{3}", "3.0001", False),
    ("\\boxed{007}", "7", True),
    # percentages
    ("The answer is 50%.", "\\frac{1}{2}", True),
    ("\\boxed{25\\%}", "0.25", True),
    ("\\boxed{25\\%}", "0.5", False),
    # sets, tuples, intervals
    ("\\boxed{\\{1, 2, 3\\}}", "\\{3, 2, 1\\}", True),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2, 3\\}", False),
    ("\\boxed{(0, 1]}", "(0, 1]", True),
    ("\\boxed{(0, 1]}", "[0, 1]", False),
    ("\\boxed{(-\\infty, 2)}", "(-\\infty, 2)", True),
    ("\\boxed{[1, 5)}", "[1, 5]", False),
    # equations and expressions
    ("\\boxed{x = 2}", "2", True),
    ("\\boxed{y = 2x + 1}", "y = 1 + 2x", True),
    ("\\boxed{x^2 + 2x + 1}", "(x+1)^2", True),
    ("\\boxed{x^2 - 1}", "(x-1)^2", False),
    ("\\boxed{x = 3}", "2", False),
    # which answer is "final"
    ("First I got \\boxed{4}, but that is wrong; the answer is \\boxed{5}.", "5", True),
    ("First I got \\boxed{5}, but correcting it gives \\boxed{4}.", "5", False),
    ("The answer is $\\frac{7}{3}$.", "\\frac{7}{3}", True),
    ("**Final Answer:** $12$", "12", True),
    ("Adding 3 and 4 gives 7, then doubling gives 14", "14", True),
    ("Adding 3 and 4 gives 7, then doubling gives 14", "7", False),
    ("I am not sure how to solve this.", "3", False),
    ("", "3", False),
    # reference is a worked solution (MATH style): its last box is the gold answer
    ("\\boxed{6}", "We have 2 \\cdot 3 = \\boxed{6}.", True),
    ("\\boxed{5}", "We have 2 \\cdot 3 = \\boxed{6}.", False),
    ("\\boxed{\\text{(B)}}", "B", True),
    ("\\boxed{5 \\text{ cm}}", "5", True),
]


@pytest.mark.parametrize(("completion", "reference", "expected"), MATH_PAIRS)
def test_math_pairs(pool, completion, reference, expected):
    assert math_equal(completion, reference, pool=pool) is expected


def test_table_is_large_and_balanced():
    assert len(MATH_PAIRS) >= 40
    assert sum(expected for *_, expected in MATH_PAIRS) >= 15
    assert sum(not expected for *_, expected in MATH_PAIRS) >= 15


def test_hanging_comparison_counts_as_wrong_and_worker_is_replaced():
    with MathVerifierPool(num_workers=1, timeout=5.0) as own_pool:
        assert math_equal("\\boxed{3}", "3.0", pool=own_pool)
        started = time.monotonic()
        # The hard deadline (0.5 s) is shorter than math-verify's own 1 s alarm, so the worker is killed.
        verdict = math_verdict("\\boxed{10^{10^{10}}}", "1", timeout=0.5, pool=own_pool)
        assert verdict == Verdict(False, "comparison timed out after 0.5 s")
        assert time.monotonic() - started < 3.0
        assert own_pool.restarts == 1
        assert math_equal("\\boxed{\\frac{1}{4}}", "0.25", pool=own_pool)  # the replacement works


def test_slow_comparison_stopped_by_math_verify_alarm_keeps_worker(pool):
    restarts = pool.restarts
    assert math_equal("\\boxed{10^{10^{10}}}", "1", timeout=3.0, pool=pool) is False
    assert pool.restarts == restarts


def test_safe_from_many_threads(pool):
    pairs = [(f"\\boxed{{\\frac{{{n}}}{{2}}}}", str(n / 2)) for n in range(1, 25)]
    verdicts: dict[int, bool] = {}

    def check(index: int) -> None:
        verdicts[index] = math_equal(*pairs[index], pool=pool)

    threads = [threading.Thread(target=check, args=(index,)) for index in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts == dict.fromkeys(range(len(pairs)), True)


def test_math_equal_many_keeps_order(pool):
    pairs = [(f"\\boxed{{{n}}}", str(n if n % 3 else n + 1)) for n in range(12)]
    assert math_equal_many(pairs, pool=pool) == [n % 3 != 0 for n in range(12)]


def test_bad_inputs_raise_clear_errors(pool):
    with pytest.raises(ValueError, match="reference answer is empty"):
        math_equal("\\boxed{1}", "  ", pool=pool)
    with pytest.raises(TypeError, match="completion as str"):
        math_equal(None, "1", pool=pool)
    with pytest.raises(ValueError, match="num_workers"):
        MathVerifierPool(num_workers=0)
    with pytest.raises(ValueError, match="timeout"):
        math_equal("\\boxed{1}", "2", timeout=0, pool=pool)
    closed = MathVerifierPool(num_workers=1)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.equal_answers("1", "2")


# A strict grader marks an answer that offers more than one value wrong, even when one of them is right.
HEDGED = [
    ("The final answer is 42 (or 43)", "43"),
    ("\\boxed{42 | 43}", "43"),
    ("\\boxed{x=42 \\lor x=43}", "43"),
    ("\\boxed{42 \\\\ 43}", "43"),
    ("$42$ (alternatively $43$)", "43"),
    ("\\boxed{43 \\text{ or maybe } 44}", "43"),
    ("1\u2026100", "100"),
    ("1...100", "100"),
    ("1 \\ldots 100", "100"),
    ("1 to 100", "100"),
]


@pytest.mark.parametrize(("completion", "reference"), HEDGED)
def test_hedged_answers_are_wrong(pool, completion, reference):
    verdict = math_verdict(completion, reference, pool=pool)
    assert not verdict.passed
    assert verdict.reason.startswith("the answer offers more than one value: '")
    assert math_equal(completion, reference, pool=pool) is False


@pytest.mark.parametrize(
    ("completion", "reference"),
    [
        ("\\boxed{|x-1|}", "|1-x|"),  # paired pipes are an absolute value
        # a vector is one value, its rows broken inside its environment
        ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
        ("\\boxed{x = 2 \\text{ or } x = 1}", "x = 1 \\text{ or } x = 2"),  # the reference offers both too
        ("Either way, the total is 14", "14"),
        ("We sum 1 to 100, which gives 5050", "5050"),
    ],
)
def test_single_values_and_matching_multi_value_references_still_pass(pool, completion, reference):
    assert math_verdict(completion, reference, pool=pool) == Verdict(True)


def test_verdicts_say_why(pool):
    too_long = "\\boxed{5}" + " " * MAX_COMPLETION_CHARS
    assert math_verdict(too_long, "5", pool=pool) == Verdict(
        False, f"completion is {len(too_long)} characters; oracles read at most {MAX_COMPLETION_CHARS}"
    )
    assert math_verdict("I am not sure.", "3", pool=pool) == Verdict(False, "no final answer found")
    assert math_verdict("\\boxed{4}", "5", pool=pool) == Verdict(False, "not equal to the reference")
    long_answer = "\\boxed{" + "1+" * MAX_ANSWER_CHARS + "1}"
    assert math_verdict(long_answer, "5", pool=pool).reason == (
        f"the answer is {2 * MAX_ANSWER_CHARS + 1} characters; math-verify reads at most {MAX_ANSWER_CHARS}"
    )
    assert not pool.compare_answers("1" * (MAX_ANSWER_CHARS + 1), "1").passed  # never reaches a worker
    assert math_verdict("\\boxed{1}", "\\frac{1}{1}", pool=pool) == Verdict(True)


@pytest.mark.parametrize(
    "completion",
    ["\\boxed{\ud800}", "answer: \udfff\x00", "\\boxed{\x00\x1b[0m}", "\x00" * 50, "\\boxed{1\ud800}",
     "2 or \ud800"],
)
def test_odd_content_gives_a_verdict_not_an_exception(pool, completion):
    verdict = math_verdict(completion, "1", pool=pool)
    assert isinstance(verdict, Verdict)
    assert verdict.passed or verdict.reason.encode()  # lone surrogates in a reason are escaped
