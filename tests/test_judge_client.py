"""The shared judge client and verdict parsers (judge/client.py, judge/verdicts.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from phi4_recipes.judge import parse_choice, parse_pairwise_verdict

JUDGE_DIR = Path(__file__).resolve().parents[1] / "src" / "phi4_recipes" / "judge"


@pytest.mark.parametrize("reply, verdict", [
    ("[[A]]", "A"),
    ("Both are fine but B has an error. [[A]]", "A"),
    ("First I thought [[A>B]], on reflection [[B>>A]]", "B"),
    ("My final verdict is tie: [[A=B]]", "tie"),
    ("[[ Tie ]]", "tie"),
    ("Verdict: B", "B"),
    ("**B**", "B"),
    ("Final decision - draw", "tie"),
    ("lorem ipsum dolor", None),
    ("", None),
    ("[[maybe]]", None),
])
def test_pairwise_verdicts_last_explicit_label_wins(reply, verdict):
    assert parse_pairwise_verdict(reply) == verdict


def test_parse_choice_returns_the_callers_spelling_or_none():
    assert parse_choice("Grade: b", "ABC") == "B"
    assert parse_choice("[[Yes]] ... no wait [[no]]", ["yes", "no"]) == "no"
    assert parse_choice("  yes. ", ["yes", "no"]) == "yes"
    assert parse_choice("I cannot tell", ["yes", "no"]) is None


def test_judge_never_imports_evaluation():
    # Layering: judge/ sits below evaluation/ (evaluation's judge-graded tasks import judge.client).
    for path in JUDGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any("evaluation" in n or n.startswith("phi4_recipes.run_") for n in names), path
