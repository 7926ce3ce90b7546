"""Token-budgeted data mixtures with phases (pretrain -> midtrain).

A mixture file has one entry per phase; each phase has a token budget and sources whose `weight` is a
share of that budget *in tokens* (the Phi-4 report states its mixes that way). The planner counts the
tokens each source holds, works out how many epochs the budget implies, and refuses a plan that would
exceed a source's `max_epochs`. A source may be another phase (`from_phase`), which is how midtraining
draws its 70% "recall" tokens from the pretraining mix.

    phases:
      pretrain:
        token_budget: 2_000_000
        sources:
          - {name: synthetic, path: data/tiny/pretrain_synthetic.jsonl, weight: 0.4, max_epochs: 12}
      midtrain:
        token_budget: 500_000
        sources:
          - {name: long, path: data/tiny/midtrain_long.jsonl, weight: 0.3, min_tokens: 512,
             upweight_min_tokens: 1024, upweight: 2}
          - {name: recall, from_phase: pretrain, weight: 0.7}
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from datasets import Dataset, concatenate_datasets

from phi4_recipes.recipe_checks import RecipeError, from_mapping, require_local_input

from .sources import fingerprint, load_source, require_columns


@dataclass
class MixtureSource:
    name: str
    weight: float
    path: str | None = None
    from_phase: str | None = None
    split: str = "train"
    config: str | None = None
    text_field: str = "text"
    max_epochs: float | None = None
    min_tokens: int | None = None
    upweight_min_tokens: int | None = None
    upweight: float = 1.0


@dataclass
class MixturePhase:
    name: str
    token_budget: int
    sources: list[MixtureSource] = field(default_factory=list)
    file: str | None = None  # the mixture YAML, so a missing source names it and the recipe that writes it


@dataclass
class SourcePlan:
    name: str
    weight: float
    available_tokens: int
    planned_tokens: int
    epochs: float
    max_epochs: float | None


@dataclass
class MixturePlan:
    phase: str
    token_budget: int
    sources: list[SourcePlan]

    def table(self) -> str:
        rows = [f"mixture phase '{self.phase}', budget {self.token_budget:,} tokens",
                f"{'source':<14}{'weight':>8}{'available':>14}{'planned':>14}{'epochs':>9}{'cap':>7}"]
        for s in self.sources:
            cap = "-" if s.max_epochs is None else f"{s.max_epochs:g}"
            rows.append(f"{s.name:<14}{s.weight:>8.2f}{s.available_tokens:>14,}{s.planned_tokens:>14,}"
                        f"{s.epochs:>9.2f}{cap:>7}")
        return "\n".join(rows)


class MixtureError(RecipeError):
    """A mixture file or plan that cannot run; names the file, phase and source."""


def _parse_source(raw: dict, where: str) -> MixtureSource:
    try:
        source = from_mapping(MixtureSource, raw, where)
    except RecipeError as err:
        raise MixtureError(str(err)) from err
    if (source.path is None) == (source.from_phase is None):
        raise MixtureError(f"{where}: give exactly one of 'path' or 'from_phase'")
    return source


def load_mixture(path: str | Path) -> dict[str, MixturePhase]:
    """Read and validate a mixture file: weights sum to 1 per phase, phases referenced exist."""
    path = Path(path)
    if not path.is_file():
        raise MixtureError(f"mixture file not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if set(raw) != {"phases"} or not isinstance(raw["phases"], dict):
        raise MixtureError(f"{path}: a mixture file has a single top-level key 'phases' mapping names to phases")
    phases = {}
    for name, body in raw["phases"].items():
        where = f"{path}: phases.{name}"
        if not isinstance(body, dict) or set(body) != {"token_budget", "sources"}:
            raise MixtureError(f"{where}: needs exactly the keys 'token_budget' and 'sources'")
        sources = [_parse_source(s, f"{where}.sources[{i}]") for i, s in enumerate(body["sources"])]
        total = sum(s.weight for s in sources)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise MixtureError(f"{where}: source weights sum to {total:g}, not 1")
        phases[name] = MixturePhase(name, int(body["token_budget"]), sources, str(path))
    for phase in phases.values():
        for s in phase.sources:
            if s.from_phase is not None and s.from_phase not in phases:
                raise MixtureError(f"{path}: phases.{phase.name} source '{s.name}' refers to unknown phase "
                                   f"'{s.from_phase}'")
    return phases


class MixtureBuilder:
    """Plans and builds the phases of one mixture with one tokenizer; loads each source once."""

    def __init__(self, phases: dict[str, MixturePhase], tokenizer, seed: int = 0):
        self.phases, self.tokenizer, self.seed = phases, tokenizer, seed
        self.fingerprints: list[dict] = []
        self._pools: dict[tuple[str, str], tuple[Dataset, list[int]]] = {}
        self._built: dict[str, Dataset] = {}

    def _count_tokens(self, dataset: Dataset, text_field: str) -> list[int]:
        def count(batch):
            ids = self.tokenizer(batch[text_field], add_special_tokens=False)["input_ids"]
            return {"_tokens": [len(x) for x in ids]}

        return dataset.map(count, batched=True, desc="counting tokens")["_tokens"]

    def _pool(self, phase: str, source: MixtureSource) -> tuple[Dataset, list[int]]:
        """The source's documents as a text dataset, and the token count of each (after filters/upweights)."""
        key = (phase, source.name)
        if key in self._pools:
            return self._pools[key]
        if source.from_phase is not None:
            dataset = self.build(source.from_phase).select_columns(["text"])
            tokens = self._count_tokens(dataset, "text")
        else:
            index = self.phases[phase].sources.index(source)
            require_local_input(source.path, f"phases.{phase}.sources[{index}].path", self.phases[phase].file)
            dataset = load_source(source.path, split=source.split, config=source.config)
            require_columns(dataset, [source.text_field], f"{source.path} (mixture source '{source.name}')")
            self.fingerprints.append(fingerprint(source.path, dataset))
            dataset = dataset.select_columns([source.text_field])
            if source.text_field != "text":
                dataset = dataset.rename_column(source.text_field, "text")
            tokens = self._count_tokens(dataset, "text")
            if source.min_tokens is not None:
                keep = [i for i, t in enumerate(tokens) if t > source.min_tokens]
                dataset, tokens = dataset.select(keep), [tokens[i] for i in keep]
            if source.upweight_min_tokens is not None and source.upweight != 1.0:
                # Up-weighting = repeating the longest documents in the pool, so they are seen more often.
                repeats = [max(1, round(source.upweight)) if t >= source.upweight_min_tokens else 1 for t in tokens]
                order = [i for i, r in enumerate(repeats) for _ in range(r)]
                dataset, tokens = dataset.select(order), [tokens[i] for i in order]
        if not tokens:
            raise MixtureError(f"mixture source '{source.name}' of phase '{phase}' has no documents left")
        self._pools[key] = (dataset, tokens)
        return dataset, tokens

    def plan(self, phase: str) -> MixturePlan:
        if phase not in self.phases:
            raise MixtureError(f"unknown mixture phase '{phase}'; known: {sorted(self.phases)}")
        spec = self.phases[phase]
        plans = []
        for source in spec.sources:
            _, tokens = self._pool(phase, source)
            available = sum(tokens)
            planned = round(source.weight * spec.token_budget)
            plans.append(SourcePlan(source.name, source.weight, available, planned, planned / available,
                                    source.max_epochs))
        over = [p for p in plans if p.max_epochs is not None and p.epochs > p.max_epochs]
        if over:
            detail = ", ".join(f"'{p.name}' needs {p.epochs:.2f} epochs (cap {p.max_epochs:g})" for p in over)
            raise MixtureError(f"mixture phase '{phase}' refused: {detail}; lower the budget or the weight")
        return MixturePlan(phase, spec.token_budget, plans)

    def build(self, phase: str) -> Dataset:
        """Documents of `phase` as a shuffled `text` + `source` dataset matching the plan's token shares."""
        if phase in self._built:
            return self._built[phase]
        plan = self.plan(phase)
        parts = []
        for source, source_plan in zip(self.phases[phase].sources, plan.sources):
            dataset, tokens = self._pool(phase, source)
            rng = random.Random(f"{self.seed}:{phase}:{source.name}")
            indices, remaining = [], source_plan.planned_tokens
            while remaining > 0:
                order = list(range(len(tokens)))
                rng.shuffle(order)
                for i in order:
                    if remaining <= 0:
                        break
                    indices.append(i)
                    remaining -= tokens[i]
            part = dataset.select(indices)
            parts.append(part.add_column("source", [source.name] * len(part)))
        self._built[phase] = concatenate_datasets(parts).shuffle(seed=self.seed).flatten_indices()
        return self._built[phase]
