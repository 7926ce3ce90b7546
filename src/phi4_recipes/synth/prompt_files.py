"""The workflows' prompts, read from versioned files: ``prompts/<version>/<name>.txt``.

A prompt is a ``string.Template`` (``$field``), so code and JSON braces in it need no escaping. Every
output row records the name and version of each prompt that made it; changing a prompt means adding a
new version folder, never editing a released one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from phi4_recipes.recipe_checks import RecipeError


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str

    @property
    def tag(self) -> str:
        """What provenance records: ``name@version``."""
        return f"{self.name}@{self.version}"

    def render(self, **fields: object) -> str:
        """The prompt with every ``$field`` filled in; a missing field is a KeyError naming it."""
        return string.Template(self.template).substitute({k: str(v) for k, v in fields.items()})


@cache
def load_prompt(name: str, version: str = "v1") -> Prompt:
    path = files("phi4_recipes.synth").joinpath("prompts", version, f"{name}.txt")
    if not path.is_file():
        raise RecipeError(f"no synth prompt '{name}' in version '{version}' (looked for prompts/{version}/{name}.txt)")
    return Prompt(name, version, path.read_text(encoding="utf-8"))
