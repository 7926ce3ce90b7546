"""Answer extraction, multiple-choice and exact-match oracles, and the oracle factory (no sandbox needed)."""

import pytest

from phi4_recipes.verify.answers import extract_boxed, extract_code, extract_final_answer, reference_answer
from phi4_recipes.verify.choice import choice_equal, choice_label, extract_choice
from phi4_recipes.verify.exact import exact_match, normalize_answer
from phi4_recipes.verify.oracles import make_oracle


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{a^{2}+b_{1}}", "a^{2}+b_{1}"),
        ("\\boxed 5.", "5"),
        ("\\fbox{7}", "7"),
        ("truncated \\boxed{12", None),
        ("no box here", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We get 3, so the answer is 0.5.", "0.5"),
        ("The answer is $\\frac{1}{3}$.", "\\frac{1}{3}"),
        ("Final answer:\n\n**42**", "42"),
        ("I think the answer is 4. Wait, the answer is 6", "6"),
        ("After 12 steps we reach 1,024 cells", "1,024"),
        ("Costs rose by 15% and then 20%", "20%"),
        ("nothing numeric", None),
    ],
)
def test_extract_final_answer_cascade(text, expected):
    assert extract_final_answer(text) == expected


def test_reference_answer_prefers_box_and_never_falls_back_to_numbers():
    assert reference_answer("Thus $x = \\boxed{4}$.") == "4"
    assert reference_answer("x^2+1") == "x^2+1"
    assert reference_answer("$\\frac{3}{4}$") == "\\frac{3}{4}"


def test_extract_code_prefers_last_python_block():
    text = "First try:\n```python\nx = 1\n```\nBetter:\n```python\nx = 2\n```\n```bash\nls\n```"
    assert extract_code(text) == "x = 2\n"
    assert extract_code("```\nprint(3)\n```") == "print(3)\n"
    assert extract_code("print(4)") == "print(4)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B).", "B"),
        ("the answer is B", "B"),
        ("Answer: C", "C"),
        ("**D**", "D"),
        ("After comparing the options, **(A)** fits best.", "A"),
        ("B.", "B"),
        ("B", "B"),
        ("(c)", "C"),
        ("$\\boxed{C}$", "C"),
        ("\\boxed{\\text{D}}", "D"),
        ("A. is tempting, but looking closer the answer is D", "D"),
        ("Option A fails because it ignores friction, so I choose option C.", "C"),
        ("Let me reason.\nC. Because the pressure drops\n", "C"),
        ("A good approach is to compare both values.", None),
        ("Because energy is conserved, nothing changes.", None),
        ("I cannot decide.", None),
        ("The answer is (E).", None),  # not one of A-D
    ],
)
def test_extract_choice(text, expected):
    assert extract_choice(text, letters="ABCD") == expected


def test_choice_equal_accepts_letters_and_indices():
    assert choice_equal("The answer is (B)", "B")
    assert choice_equal("The answer is (B)", 1)
    assert choice_equal("The answer is (B)", "(b)")
    assert not choice_equal("The answer is (B)", "C")
    assert choice_label(9) == "J"
    with pytest.raises(ValueError, match="outside"):
        choice_label(4, letters="ABCD")
    with pytest.raises(ValueError, match="not one of the letters"):
        choice_label("Z", letters="ABCD")
    with pytest.raises(ValueError, match="upper-case"):
        extract_choice("A", letters="abc")


def test_exact_match():
    assert normalize_answer("  The Eiffel   Tower! ") == "eiffel tower"
    assert exact_match("the Eiffel Tower.", "Eiffel Tower")
    assert exact_match("It was built in Paris. The answer is: Paris", ["paris", "Paris, France"])
    assert exact_match("\\boxed{Paris}", "paris")
    assert not exact_match("Lyon", "Paris")
    assert not exact_match("Paris", "Paris!", normalize=False)
    with pytest.raises(ValueError, match="non-empty"):
        exact_match("x", [])
    with pytest.raises(ValueError, match="empty after normalisation"):
        exact_match("x", "the")


def test_make_oracle_non_code_kinds():
    assert make_oracle("exact", ["Paris"])("The answer is Paris")
    assert not make_oracle("exact", "Paris")("London")
    assert make_oracle("choice", 2, letters="ABCD")("**C**")
    assert not make_oracle("choice", "A")("**C**")
    math_oracle = make_oracle("math", "\\frac{1}{2}", timeout=5.0)
    assert math_oracle("so the answer is \\boxed{0.5}")
    assert not math_oracle("so the answer is \\boxed{0.25}")


def test_make_oracle_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown oracle kind"):
        make_oracle("regex", "x")
    with pytest.raises(ValueError, match="unknown"):
        make_oracle("math", "1", letters="ABCD")
    with pytest.raises(ValueError, match="non-empty str"):
        make_oracle("math", "")
    with pytest.raises(ValueError, match="list of tests"):
        make_oracle("code", "assert True")
    with pytest.raises(ValueError, match="not one of the letters"):
        make_oracle("choice", "Q")
