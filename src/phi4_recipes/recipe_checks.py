"""Recipe and settings files checked before any work: typed records from YAML/JSON mappings (recipes,
mixtures, the benchmark registry, curation settings) with errors that name the file, the key and the closest
match; local inputs that must exist, named with the recipe under ``recipes/`` that writes them; and output
folders that must be folders the run can write.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class RecipeError(ValueError):
    """A recipe or settings file that cannot run: the message names the file and the key."""


def describe_source(recipe_path: str | None, overridden: bool) -> str:
    """How an error names where a script's options came from: the recipe file, noting command-line overrides."""
    if recipe_path is None:
        return "command line"
    return f"{recipe_path} (with command-line overrides)" if overridden else recipe_path


# The fields of RecipeSource: the parser fills them in; neither a recipe nor the command line may set them.
PARSER_FIELDS = ("recipe_path", "recipe_overridden")


@dataclasses.dataclass
class RecipeSource:
    """Where a script's options came from, set by the recipe parser before any option is checked, so a check in
    ``__post_init__`` names the recipe file (``self.source``) from the start. Every script's options have it."""

    # Keyword-only, so options without a default (CurateConfig's input_dir) may follow them.
    recipe_path: str | None = dataclasses.field(
        default=None, kw_only=True, metadata={"help": "Set by the parser: the recipe file (not a recipe key or option)."})
    recipe_overridden: bool = dataclasses.field(
        default=False, kw_only=True, metadata={"help": "Set by the parser: whether the command line overrides recipe keys."})

    @property
    def source(self) -> str:
        return describe_source(self.recipe_path, self.recipe_overridden)


def closest_hint(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_keys(mapping: Mapping[str, Any], known: Iterable[str], where: str, *, what: str = "key") -> None:
    """Raise RecipeError for the first key of ``mapping`` not in ``known``, naming ``where`` and the closest key."""
    known = set(known)
    for key in mapping:
        if key not in known:
            raise RecipeError(f"{where}: unknown {what} '{key}'{closest_hint(str(key), known)}")


def value_matches(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a field annotation such as ``int | None``, ``list[str]`` or a Literal.

    Annotations this does not understand (classes of other libraries) are accepted: the dataclass itself
    is the last word, this check exists to name the file before it.
    """
    origin = typing.get_origin(annotation)
    if annotation is Any or isinstance(annotation, str | typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(value_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin in (list, tuple, set, frozenset, Iterable):
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        return isinstance(value, list | tuple) and all(value_matches(v, item) for v in value)
    if origin in (dict, Mapping):
        return isinstance(value, dict)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return value in {member.value for member in annotation} or isinstance(value, annotation)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    return True


def type_name(annotation: Any) -> str:
    """How an annotation reads in an error: ``int``, ``one of ['sft', 'dpo_pts']``, ``float | None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return f"one of {list(typing.get_args(annotation))}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass's init fields (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def check_values(mapping: Mapping[str, Any], cls: type, where: str) -> None:
    """Unknown keys and values of the wrong type, each named with ``where``."""
    known = field_types(cls)
    check_keys(mapping, known, where)
    for key, value in mapping.items():
        if not value_matches(value, known[key]):
            raise RecipeError(f"{where}: key '{key}' expects {type_name(known[key])}, got {value!r}")


def from_mapping(cls: type, mapping: Any, where: str, **fixed: Any):
    """Build dataclass ``cls`` from ``mapping`` (plus ``fixed`` values), or raise RecipeError naming ``where``."""
    if not isinstance(mapping, Mapping):
        raise RecipeError(f"{where}: expected a mapping of key: value, got {type(mapping).__name__}")
    check_values(mapping, cls, where)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in mapping and f.name not in fixed
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**mapping, **fixed)
    except RecipeError:
        raise
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{where}: {err}") from err


def looks_local(value: str) -> bool:
    """Whether a model or dataset name is meant as a local path rather than a Hub id (``namespace/name``)."""
    path = Path(value).expanduser()
    return (value.startswith((".", "/", "~")) or value.count("/") >= 2 or path.suffix in (".json", ".jsonl", ".parquet")
            or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()))


def writers_of(path: str, recipe_path: str | None) -> list[str]:
    """Recipes beside ``recipe_path`` (its whole ``recipes/`` tree) whose ``output_dir`` makes ``path``."""
    if not recipe_path:
        return []
    recipe = Path(recipe_path).resolve()
    root = next((parent for parent in recipe.parents if parent.name == "recipes"), recipe.parent)
    found = []
    for candidate in sorted(root.rglob("*.yaml")):
        try:
            output_dir = (yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}).get("output_dir")
        except (yaml.YAMLError, AttributeError, OSError):
            continue
        if isinstance(output_dir, str) and (path == output_dir or path.startswith(output_dir.rstrip("/") + "/")):
            found.append(str(candidate.relative_to(root.parent)))
    return found


def require_local_input(value: str | None, key: str, recipe_path: str | None) -> None:
    """A path-like input that does not exist fails naming the path, the key and the recipe that writes it.

    Without this a missing ``outputs/tiny/midtrain`` reaches the Hub client and fails as a malformed repo id.
    """
    if not value or not looks_local(value) or Path(value).expanduser().exists():
        return
    where = recipe_path or "command line"
    writers = writers_of(value, recipe_path)
    hint = f"; it is written by {' or '.join(writers)}: run that stage first" if writers else ""
    raise RecipeError(f"{where}: key '{key}': {value} does not exist{hint}")


def require_output_dir(value: str | None, key: str, recipe_path: str | None) -> None:
    """The folder a stage writes to is a folder (or can be made one) on a file system it may write, checked
    before any work: a read-only ``output_dir`` would otherwise be found only when the trained weights are
    saved, and a file in its place fails as a bare FileExistsError.

    ``os.access`` is the kernel's own answer for this process: it honours permission bits (which root bypasses),
    read-only mounts and immutable folders alike, without writing anything.
    """
    if not value:
        return
    where = recipe_path or "command line"
    path = Path(value).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if existing == path and not path.is_dir():
        raise RecipeError(f"{where}: key '{key}': {value} is a file, not a folder; choose another {key}")
    if not existing.is_dir():
        raise RecipeError(f"{where}: key '{key}': cannot create {value}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "is on a read-only file system" if _read_only_mount(existing) else "is not writable by this user"
        raise RecipeError(f"{where}: key '{key}': {value} cannot be written: {existing} {reason}")


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
