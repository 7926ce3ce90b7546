"""check_python's verdicts cannot be forged: the solution and the tests run in separate sandboxed interpreters.

Each hostile solution below (but the last, a new attempt) made the old single-process harness report
a pass: it trusted a nonce-marked verdict line printed by the process that also ran the model's code. All
of them implement ``add`` wrongly, so each must now fail, with exactly one verdict per test.
"""

import textwrap

import pytest

from phi4_recipes.verify._candidates import solution_names
from phi4_recipes.verify.code_check import check_python, collect_verdicts
from phi4_recipes.verify.oracles import make_oracle

pytestmark = pytest.mark.sandbox

TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
WRONG = "def add(a, b):\n    return a - b\n"
# The old harness printed  <nonce> + json.dumps(results);  these forgers find the nonce and print their own.
FORGE = textwrap.dedent("""
    import os, re, sys
    def forge(text):
        found = re.search(r"@@verdict-[0-9a-f]{16}@@", text)
        if found:
            print(found.group(0) + "[" + ", ".join(["null"] * 50) + "]", flush=True)
""")

BYPASSES = {
    "marker read from main.py": FORGE + "forge(open('main.py').read())\nos._exit(0)\n" + WRONG,
    "marker read from the caller's frame": FORGE + textwrap.dedent("""
        frame = sys._getframe(1)
        forge(repr(frame.f_code.co_consts) + repr(frame.f_globals))
        os._exit(0)
    """) + WRONG,
    "marker printed from an exit hook": FORGE + textwrap.dedent("""
        import atexit
        marker = open('main.py').read()
        atexit.register(lambda: forge(marker))
    """) + WRONG,
    "builtins.exec replaced by a no-op": "import builtins\nbuiltins.exec = lambda *args, **kwargs: None\n" + WRONG,
    "builtins.compile patched": textwrap.dedent("""
        import builtins
        _compile = compile
        builtins.compile = lambda source, filename, mode, *args, **kwargs: _compile("pass", filename, mode)
    """) + WRONG,
    "json.dumps patched": "import json\njson.dumps = lambda *args, **kwargs: '[null, null]'\n" + WRONG,
    "always-equal object": textwrap.dedent("""
        class Anything:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
        def add(a, b):
            return Anything()
    """),
    "always-equal int subclass": textwrap.dedent("""
        class Int(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def add(a, b):
            return Int(a - b)
    """),
    "verdict lines on every descriptor": textwrap.dedent("""
        import json, os
        for fd in range(1, 64):
            for index in range(2):
                try:
                    os.write(fd, (json.dumps({"test": index, "error": None}) + "\\n").encode())
                except OSError:
                    pass
    """) + WRONG,
}


@pytest.mark.parametrize("name", list(BYPASSES))
def test_forged_verdicts_fail(name):
    result = check_python(BYPASSES[name], TESTS, timeout=10.0)
    assert not result.passed, name
    assert len(result.outcomes) == len(TESTS)  # exactly one verdict per test (the old harness took 50)


def test_exactly_one_verdict_per_test_is_required():
    line = '{"test": %d, "error": null}'
    assert collect_verdicts("\n".join(line % i for i in (0, 1)), 2) == [None, None]
    assert collect_verdicts(line % 0, 2) == [None, "missing"]  # the test process died after one test
    assert collect_verdicts("\n".join(line % i for i in (0, 1, 1)), 2) is None  # a duplicate voids the run
    assert collect_verdicts("\n".join(line % i for i in range(50)), 2) is None
    assert collect_verdicts("not json", 2) is None


def test_values_arrive_rebuilt_objects_as_proxies_and_exceptions_as_builtins():
    solution = textwrap.dedent("""
        def stats(values):
            return (min(values), max(values)), {"n": len(values)}, {1.5, None}, b"ok", float("inf")
        def checked(x):
            if x < 0:
                raise ValueError("negative")
            return x
        def opaque():
            return lambda: 1
        print("the solution may print freely")
    """)
    tests = [
        "assert stats([3, 1, 2]) == ((1, 3), {'n': 3}, {1.5, None}, b'ok', float('inf'))",
        "assert type(stats([1])[0]) is tuple",
        "try:\n    checked(-1)\n    raise AssertionError('no error')\nexcept ValueError as error:\n    assert str(error) == 'negative'",
        "assert checked(x=4) == 4",
        "assert opaque()() == 1",  # issue 34: a returned function stays in the solution's process, callable
        "assert opaque() != 1 and not opaque() == opaque()",  # a proxy is no value, and two lambdas differ
    ]
    result = check_python(solution, tests)
    assert [outcome.passed for outcome in result.outcomes] == [True] * 6, result.outcomes


def test_trusted_setup_helpers_and_an_explicit_candidate():
    # HumanEval style: the prompt's helpers run on the trusted side; only the candidate is the solution's.
    setup = "def double(x):\n    return 2 * x\n\ndef solve(x):\n    '''stub from the prompt'''\n"
    solution = "def double(x):\n    return 0\n\ndef solve(x):\n    return 2 * x\n"  # lies about the helper
    test = "def check(candidate):\n    assert candidate(3) == double(3)\n\ncheck(solve)"
    assert check_python(solution, [test], test_setup=setup, candidates=["solve"]).passed
    assert solution_names([test], None, {"double", "solve"}, set()) == ["double", "solve"]
    assert solution_names([test], None, {"double", "solve"}, {"double", "solve"}) == []
    assert solution_names([test], ["solve"], {"double", "solve"}, {"double", "solve"}) == ["solve"]


def test_odd_code_fails_instead_of_raising():
    surrogate = check_python("def add(a, b):\n    return a + b  # \udc80\n", TESTS)
    assert not surrogate.passed and "not valid Unicode" in surrogate.outcomes[0].error
    huge = check_python("x = 1\n" * (6 * 2**20), TESTS)
    assert not huge.passed and "characters; the oracle runs solutions of at most" in huge.outcomes[0].error
    with pytest.raises(ValueError, match="not valid Unicode"):
        check_python(WRONG, [{"stdin": "\ud800", "stdout": ""}])
    with pytest.raises(ValueError, match="timeout"):
        check_python(WRONG, TESTS, timeout=float("inf"))


def test_a_solution_function_named_like_a_builtin_is_the_one_the_tests_call():
    # Issue 27: the tests used to call Python's pow, so a wrong pow passed.
    assert not check_python("def pow(a, b):\n    return 0\n", ["assert pow(2, 3) == 8"]).passed
    own_max = "def max(values):\n    return sorted(values)[-1] if values else None\n"  # builtin max([]) raises
    assert check_python(own_max, ["assert max([3, 1, 2]) == 3", "assert max([]) is None"]).passed
    assert check_python("def square(x):\n    return x * x\n", ["assert pow(2, 3) == 8"]).passed  # not defined
    # Beside another function under test a builtin stays the tests' helper, out of the solution's reach.
    zero_abs = "def abs(x):\n    return 0\n\n" + WRONG
    assert not check_python(zero_abs, ["assert abs(add(1, 2) - 3) < 1e-9"]).passed


def test_which_names_are_the_solutions():
    pow_test = ["assert pow(2, 3) == 8"]
    assert solution_names(pow_test, None, set(), set()) == []
    assert solution_names(pow_test, None, {"pow"}, set()) == ["pow"]
    assert solution_names(["assert abs(add(1, 2) - 3) < 1e-9"], None, {"abs", "add"}, set()) == ["add"]
    # The tests' own namespace and exception classes never become proxies for the solution.
    dunder = ["if __name__ == '__main__':\n    assert pow(2, 3) == 8", "try:\n    pow(0, -1)\nexcept ValueError:\n    pass"]
    assert solution_names(dunder, None, {"__name__", "ValueError", "pow"}, set()) == ["pow"]
    # Issue 34: with builtin-only tests, a builtin the tests only wrap around another call stays Python's,
    # also through a variable; a name the trusted setup binds at run time is never the solution's.
    wrapped = ["assert abs(pow(2, 10) - 1024) < 1e-9", "x = pow(2, 0.5)\nassert abs(x - 2 ** 0.5) < 1e-9",
               "assert all(pow(2, k) == 2 ** k for k in range(4))"]
    assert solution_names(wrapped, None, {"abs", "all", "pow"}, set()) == ["pow"]
    assert solution_names(["assert isclose(area(1), pi)"], None, {"isclose", "area", "pi"}, {"isclose", "pi"}) == ["area"]
    assert solution_names(["assert add(1, 2) == 3"], ["add"], {"add"}, {"add"}) == ["add"]


@pytest.mark.parametrize("raised", ["StopIteration", "StopAsyncIteration", "GeneratorExit", "KeyboardInterrupt",
                                    "SystemExit"])  # fmt: skip
def test_an_exception_of_the_solution_is_never_control_flow_on_the_trusted_side(raised):
    # Issue 27: a StopIteration from the solution ended map()/filter() on the test side, so these passed.
    solution = f"def is_even(x):\n    raise {raised}('no answer')\n"
    tests = [
        "assert all(map(is_even, [2, 4]))",
        "assert not any(map(is_even, [1, 3]))",
        "assert list(filter(is_even, [1, 3])) == []",
        "assert list(iter(lambda: is_even(1), True)) == []",
    ]
    result = check_python(solution, tests)
    assert [outcome.passed for outcome in result.outcomes] == [False] * len(tests)
    assert all(f"the solution raised {raised}: no answer" in outcome.error for outcome in result.outcomes)


def test_tests_still_catch_the_ordinary_exceptions_they_expect():
    solution = "def divide(a, b):\n    return a // b\n\ndef stop():\n    raise StopIteration\n"
    tests = [
        "try:\n    divide(1, 0)\n    raise AssertionError('no error')\nexcept ArithmeticError as error:\n"
        "    assert isinstance(error, ZeroDivisionError) and 'division' in str(error)",
        "try:\n    stop()\n    raise AssertionError('no error')\nexcept Exception:\n    pass",  # an error, not the end
        "divide(1, 0)",
    ]
    result = check_python(solution, tests)
    assert [outcome.passed for outcome in result.outcomes] == [True, True, False]
    assert result.outcomes[2].error.startswith("solution.ZeroDivisionError: integer division")


def test_the_output_of_a_function_under_test_is_cut_not_graded():
    # Issue 27: 1.6 MB of prints failed a correct function with "output limit exceeded".
    chatty = "print('x' * 800_000)\n\ndef add(a, b):\n    print('y' * 800_000)\n    return a + b\n"
    result = check_python(chatty, TESTS, timeout=20.0)
    assert result.passed, result.outcomes
    crash = "print('x' * 1_600_000)\nimport os\nos._exit(3)\n"  # it crashed; the cut output is not the reason
    assert check_python(crash, TESTS, timeout=20.0).outcomes[0].error == "exit code 3"
    # On stdin/stdout the output is the answer: a long right answer passes (issue 34: over 1 MiB failed), and
    # a flood past it still fails.
    long_answer = check_python("print('x' * 1_600_000)\n", [{"stdin": "", "stdout": "x" * 1_600_000}], timeout=20.0)
    assert long_answer.passed, long_answer.outcomes
    flood = check_python("print('x' * 5_000_000)\n", [{"stdin": "", "stdout": "x"}], timeout=20.0)
    assert not flood.passed and flood.outcomes[0].error == "output limit exceeded"


def test_allowed_packages_reach_both_sandboxes():
    solution = "import yaml\n\ndef dump(value):\n    return yaml.safe_dump(value)\n"
    tests = ["assert dump({'a': 1}) == 'a: 1\\n'", "import yaml\nassert yaml.safe_load(dump([1])) == [1]"]
    assert not check_python(solution, tests).passed  # the standard library only, by default
    assert check_python(solution, tests, allowed_packages=["yaml"]).passed
    completion = f"```python\n{solution}```"
    assert not make_oracle("code", tests)(completion)
    assert make_oracle("code", tests, allowed_packages=["yaml"])(completion)
    with pytest.raises(ValueError, match="allowed_packages"):
        make_oracle("code", tests, allowed_packages="yaml")
    with pytest.raises(ValueError, match="allowed_packages"):
        check_python(solution, tests, allowed_packages="yaml")
