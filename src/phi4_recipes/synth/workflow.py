"""What every workflow shares: one input row in, one ``SourceResult`` out, with provenance on each row.

A workflow implements ``process(row_id, row)``; it raises ``BadRow`` for a row it cannot use (a missing
field, a reply that does not parse), and ``run_row`` turns that into a reported, counted result, so one
bad row never stops a run and never vanishes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from phi4_recipes.logs import get_logger

from .chat_model import ChatModel
from .model_output import BadRow
from .prompt_files import Prompt, load_prompt

logger = get_logger(__name__)


@dataclass
class SourceResult:
    """Everything one input row produced: kept output rows, drops with their reason, or why it was bad."""

    id: str
    rows: list[dict] = field(default_factory=list)
    drops: list[dict] = field(default_factory=list)
    bad: dict | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "rows": self.rows, "drops": self.drops, "bad": self.bad}


class Workflow(ABC):
    """Args:
        options: the workflow's options dataclass (synth/options.py).
        model: the writer/annotator/critic; None for validation without generation.
        prompt_version: folder of synth/prompts/.
        seed: the run seed (recorded in provenance; each call's seed derives from it).
    """

    name: str
    prompt_names: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("messages", "text")  # the first is the default output column (SFT chat rows)

    def __init__(self, options: Any, model: ChatModel | None, prompt_version: str = "v1", seed: int = 42):
        self.options = options
        self.model = model
        self.seed = seed
        self.prompts: dict[str, Prompt] = {name: load_prompt(name, prompt_version) for name in self.prompt_names}

    @abstractmethod
    def process(self, row_id: str, row: dict) -> SourceResult:
        """Produce the result of one row; raise BadRow when the row cannot be used."""

    def run_row(self, row_id: str, row: dict) -> SourceResult:
        try:
            return self.process(row_id, row)
        except BadRow as err:
            logger.warning("synth %s: bad row %s: %s", self.name, row_id, err)
            return SourceResult(row_id, bad={"reason": err.reason, "detail": err.detail})

    def ask(self, prompt: str, seed_key: str, n: int = 1, temperature: float | None = None, **fields) -> list[str]:
        return self.model.reply(self.prompts[prompt].render(**fields), seed_key=seed_key, n=n, temperature=temperature)

    def output_row(self, source_id: str, index: int, *, text: str | None, messages: list[dict] | None,
                   scores: dict, prompts: tuple[str, ...] | None = None, **extra) -> dict:
        """One output row: a stable id, the dataset columns, the workflow's extra columns, and provenance."""
        used = self.prompt_names if prompts is None else prompts
        provenance = {"workflow": self.name, "prompts": [self.prompts[p].tag for p in used],
                      "generator": self.model.name if self.model else None, "seed": self.seed,
                      "source_id": source_id, "scores": scores}
        return {"id": f"{source_id}/{self.name}/{index}", "text": text, "messages": messages, **extra,
                "provenance": provenance}


def require(row: dict, name: str | None, kind: type | tuple = str) -> Any:
    """``row[name]``, or BadRow('missing_field:<name>') when it is absent, empty or of the wrong type."""
    value = row.get(name) if name else None
    if value is None or (isinstance(value, str | list) and not value) or not isinstance(value, kind):
        raise BadRow(f"missing_field:{name}", f"got {type(value).__name__}")
    return value


def drop(reason: str, **detail) -> dict:
    return {"reason": reason, **detail}
