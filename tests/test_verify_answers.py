"""Answer extraction, multiple-choice and exact-match oracles, and the oracle factory (no sandbox needed)."""

import random
import re

import pytest

from phi4_recipes.verify.answers import (
    _strip_decorations,
    extract_answer_phrase,
    extract_boxed,
    extract_code,
    extract_final_answer,
    multiple_value_markers,
    reference_answer,
)
from phi4_recipes.verify.choice import choice_equal, choice_label, choice_verdict, extract_choice
from phi4_recipes.verify.exact import exact_match, exact_verdict, normalize_answer
from phi4_recipes.verify.limits import MAX_COMPLETION_CHARS
from phi4_recipes.verify.oracles import make_oracle
from phi4_recipes.verify.verdict import Verdict


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


# --- Linear scanners: today's semantics, checked against the regex extractors they replaced ---------------

_OLD_CODE_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_OLD_ANSWER_PHRASE = re.compile(
    r"(?:final\s+answer|answer)\s*(?:\*\*)?\s*(?:is|:|=)\s*(?:\*\*)?[:\s]*", re.IGNORECASE
)


def old_extract_code(text, language="python"):
    blocks = _OLD_CODE_FENCE.findall(text)
    wanted = (language.lower(), "py" if language == "python" else language)
    tagged = [body for tag, body in blocks if tag.lower() in wanted]
    for candidates in (tagged, [body for tag, body in blocks if not tag]):
        if candidates:
            return candidates[-1]
    return text


def old_read_braced(text, start):
    depth, index = 0, start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
        index += 1
    return None


def old_extract_boxed(text):
    best = None
    for command in ("\\boxed", "\\fbox"):
        position = text.rfind(command)
        while position != -1:
            after = position + len(command)
            rest = text[after:]
            stripped = rest.lstrip()
            if stripped.startswith("{"):
                content = old_read_braced(text, after + len(rest) - len(stripped))
            elif rest[:1].isspace() and stripped:
                content = stripped.split()[0].rstrip(".$")
            else:
                content = None
            if content is not None:
                if best is None or position > best[0]:
                    best = (position, content.strip())
                break
            position = text.rfind(command, 0, position)
    return best[1] if best else None


def old_strip_decorations(answer):
    answer = answer.strip()
    previous = None
    while previous != answer:
        previous = answer
        answer = answer.strip().strip("*").strip()
        for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
                answer = answer[len(left) : len(answer) - len(right)]
        if answer.endswith(".") and not answer.endswith("..."):
            answer = answer[:-1]
    return answer.strip()


def old_extract_answer_phrase(text):
    for match in reversed(list(_OLD_ANSWER_PHRASE.finditer(text))):
        lines = [line for line in text[match.end() :].split("\n") if line.strip()]
        if lines:
            answer = old_strip_decorations(lines[0])
            if answer:
                return answer
    return None


def old_extract_choice(text, letters):
    option = f"[{re.escape(letters)}]"
    alone = rf"(?<![A-Za-z0-9])\(?({option})\)?(?![A-Za-z0-9])"
    patterns = [
        re.compile(
            rf"answer\s*(?:is|:)?\s*(?:option|choice)?\s*[:\-]?\s*[*_$\\{{(\[]*\s*{alone}", re.IGNORECASE
        ),
        re.compile(rf"\\boxed\{{\s*(?:\\text\{{)?\s*\(?({option})\)?\s*\}}"),
        re.compile(rf"\*\*\s*\(?({option})\)?[.:)]?\s*\*\*"),
        re.compile(rf"(?:option|choice)\s+{alone}", re.IGNORECASE),
        re.compile(rf"^\s*\(?({option})[.):](?:\s|$)", re.MULTILINE),
        re.compile(rf"\(({option})\)"),
    ]
    bare = text.strip().strip("*_.:()[]$ \n")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    for pattern in patterns:
        matches = pattern.findall(text)
        if matches:
            return matches[-1].upper()
    return None


def random_texts(alphabet, count=3000, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(count)]


def test_extract_code_and_boxed_match_the_regex_versions_they_replaced():
    alphabet = ["`", "\n", "python", "x", " ", "{", "}", "\\boxed", "\\fbox", "\\", "5"]
    for text in random_texts(alphabet, seed=1):
        assert extract_code(text) == old_extract_code(text), text
        assert extract_code(text, "bash") == old_extract_code(text, "bash"), text
        assert extract_boxed(text) == old_extract_boxed(text), text


def test_answer_phrase_and_choice_match_the_versions_they_replaced():
    phrase_alphabet = ["answer", "Final", " ", "\n", "is", ":", "=", "**", "*", "$", ".", "5", "\\(", "\\)",
                       "\x1c"]
    for text in random_texts(phrase_alphabet, seed=2):
        assert extract_answer_phrase(text) == old_extract_answer_phrase(text), text
        assert _strip_decorations(text) == old_strip_decorations(text), text
    choice_alphabet = ["answer", "Answer", " ", "is", ":", "(", ")", "B", "b", "\n", "**", "\\boxed{",
                       "\\text{", "}", "option", ".", "x", "$"]
    for text in random_texts(choice_alphabet, seed=3):
        assert extract_choice(text, "ABCD") == old_extract_choice(text, "ABCD"), text


# --- Hedged answers, bounds and verdicts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1…100", "1…100"),
        ("1...100", "1...100"),
        ("so 1 \\ldots 100", "1 \\ldots 100"),
        ("from 1 to 100", "1 to 100"),
        ("$42$ (alternatively $43$)", "42$ (alternatively $43"),
        ("it is 15% or 20%", "15% or 20%"),
        ("3 then\n100", "100"),  # another line: not one answer offering two values
        ("Adding 3 and 4 gives 7", "7"),
    ],
)
def test_last_number_fallback_keeps_a_second_value_on_its_line(text, expected):
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize(
    ("answer", "kinds"),
    [
        ("42 (or 43)", {"or"}),
        ("x=1 \\text{ or } x=2", {"or"}),
        ("x=42 \\lor x=43", {"or"}),
        ("42 | 43", {"|"}),
        ("|x-1|", set()),
        ("\\left| x \\right| + \\|v\\|", set()),
        ("42 \\\\ 43", {"\\\\"}),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", set()),
        ("1 \\ldots 100", {"range"}),
        ("\\{1, 2, \\ldots, n\\}", {"range"}),
        ("0.333...", set()),
        ("\\lim_{x \\to 0} f", set()),
        ("\\text{Oregon}", set()),
        ("\\frac{1}{2}", set()),
    ],
)
def test_multiple_value_markers(answer, kinds):
    assert multiple_value_markers(answer) == kinds


def test_oracles_refuse_a_too_long_completion_unread():
    text = "The answer is (B). Paris. " + "x" * MAX_COMPLETION_CHARS
    reason = f"completion is {len(text)} characters; oracles read at most {MAX_COMPLETION_CHARS}"
    assert exact_verdict(text, "Paris") == Verdict(False, reason)
    assert choice_verdict(text, "B") == Verdict(False, reason)
    assert extract_final_answer(text) is None


def test_exact_and_choice_verdicts_say_why():
    assert exact_verdict("The answer is Paris", "paris") == Verdict(True)
    assert exact_verdict("The answer is Lyon", "Paris").reason == "not equal to any accepted answer"
    assert "no boxed or stated answer" in exact_verdict("Lyon", "Paris").reason
    assert choice_verdict("**B**", 1) == Verdict(True)
    assert choice_verdict("The answer is (C)", "B").reason == "picked option C; the key is B"
    assert choice_verdict("I cannot decide.", "B").reason == "no option letter found"
    with pytest.raises(ValueError, match="not one of the letters"):
        choice_verdict("B", "Z", letters="ABCD")


ODD_COMPLETIONS = [
    "\ud800", "\\boxed{\ud800}", "answer: \udfff\x00", "\x00" * 100, "\x1b[31m\\boxed{\x07}",
    "```\ud800\n\x00```", "The answer is (\udcff)", "\\fbox \x85\x85", "1\u2028to\u20292",
    "\\boxed{" + "\\" * 9,
]


@pytest.mark.parametrize("text", ODD_COMPLETIONS)
def test_odd_content_gives_a_verdict_not_an_exception(text):
    assert isinstance(exact_verdict(text, "Paris"), Verdict)
    assert isinstance(choice_verdict(text, "B"), Verdict)
    extract_final_answer(text)
    extract_code(text)
    for answer in filter(None, [extract_final_answer(text)]):
        multiple_value_markers(answer)
