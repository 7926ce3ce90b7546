"""Versioned pairwise rubrics (package data under judge/prompts/), rendered into one judge request.

A rubric's version is its file name (``pairwise_v1``): a changed rubric is a new file, never an edit, so
every pair's provenance names the exact text that judged it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from phi4_recipes.recipe_checks import RecipeError

from .client import user_messages

PROMPTS_PACKAGE = "phi4_recipes.judge"
PROMPTS_FOLDER = "prompts"
_FIELDS = ("{prompt}", "{response_a}", "{response_b}")


@dataclass(frozen=True)
class Rubric:
    """One pairwise judge prompt: `version` is its file stem, `template` has {prompt}, {response_a}, {response_b}."""

    version: str
    template: str

    def messages(self, prompt: str, response_a: str, response_b: str) -> list[dict[str, str]]:
        # str.replace, not str.format: responses are model output and may hold braces.
        text = self.template.replace("{prompt}", prompt)
        text = text.replace("{response_a}", response_a).replace("{response_b}", response_b)
        return user_messages(text)


def available_rubrics() -> list[str]:
    folder = resources.files(PROMPTS_PACKAGE) / PROMPTS_FOLDER
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".md"))


def load_rubric(version: str) -> Rubric:
    """The rubric `judge/prompts/<version>.md`.

    :raises RecipeError: no such rubric (the message lists the shipped ones), or one missing a field.
    """
    path = resources.files(PROMPTS_PACKAGE) / PROMPTS_FOLDER / f"{version}.md"
    if not path.is_file():
        raise RecipeError(f"no judge rubric {version!r}; shipped rubrics: {available_rubrics()}")
    template = path.read_text(encoding="utf-8")
    missing = [f for f in _FIELDS if f not in template]
    if missing:
        raise RecipeError(f"judge rubric {version!r} lacks {missing}")
    return Rubric(version, template)


def prompt_text(messages: list[dict[str, str]]) -> str:
    """The conversation a judge sees: a single user turn as is, longer ones with their roles."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in turns)
