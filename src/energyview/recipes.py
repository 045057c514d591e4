"""Load YAML recipes into validated dataclass configs.

A recipe is a small YAML file with the sections ``data``, ``model``, ``objective``, ``train``
and ``evaluation``. Unknown keys are rejected with the key named, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .energies.base import check_temperature
from .training.config import TrainConfig

__all__ = [
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "Recipe",
    "RecipeError",
    "find_recipe",
    "list_recipes",
    "load_recipe",
    "recipe_from_dict",
]

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


class RecipeError(ValueError):
    """A recipe file is missing or malformed, or contains an invalid value."""


@dataclass
class DataConfig:
    """Training data: a dataset name from :mod:`energyview.data` and its options."""

    name: str = "digits"
    options: dict[str, Any] = field(default_factory=dict)
    noise_std: float = 0.0  # Gaussian noise added to training inputs (JEM uses 0.03)
    outliers: str | None = None  # auxiliary outlier set ("name" or "name:split") for outlier objectives
    outlier_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The network and how it becomes an energy."""

    network: str = "digits-cnn"
    options: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        _check_temperature_key("model.temperature", self.temperature)


@dataclass
class ObjectiveConfig:
    """The training objective by name and its options."""

    name: str = "conditional"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    """Evaluation settings: the test split, OOD sets, scores, temperature and report options."""

    split: str = "test"
    ood_sets: list[str] = field(default_factory=list)  # dataset names (or "name:split") scored as OOD
    ood_options: dict[str, Any] = field(default_factory=dict)  # options passed to every OOD set
    scores: list[str] = field(default_factory=lambda: ["energy", "msp", "max_logit", "entropy"])
    temperature: float = 1.0
    tpr: float = 0.95
    batch_size: int = 256
    ece_bins: int = 15
    plots: bool = True

    def __post_init__(self) -> None:
        _check_temperature_key("evaluation.temperature", self.temperature)
        if not 0.0 < self.tpr <= 1.0:
            raise ValueError(f"evaluation.tpr must lie in (0, 1], got {self.tpr}; for 95% write 0.95")
        if self.batch_size < 1 or self.ece_bins < 1:
            raise ValueError(f"evaluation.batch_size and evaluation.ece_bins must be >= 1, got {self.batch_size} and {self.ece_bins}")


@dataclass
class Recipe:
    """A whole run: what to train, how, and how to evaluate it."""

    name: str
    description: str = ""
    task: str = "classifier"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_temperature_key(key: str, value: float) -> None:
    try:
        check_temperature(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{key}: {error}") from error


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a :class:`Recipe` from a nested dict, rejecting unknown keys and wrong types."""
    try:
        return _build(Recipe, data, "")
    except (TypeError, ValueError) as error:
        raise RecipeError(f"{source}: {error}") from error


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe by file path or by name from ``recipes/``; apply ``key.sub=value`` overrides."""
    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    data.setdefault("name", path.stem)
    for override in overrides or []:
        _apply_override(data, override)
    source = f"{path} with --set {' '.join(overrides)}" if overrides else str(path)
    return recipe_from_dict(data, source)


def find_recipe(name_or_path: str | Path) -> Path:
    """Return the recipe file for a path or a name (``digits-classifier`` finds ``recipes/digits-classifier.yaml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (Path.cwd() / "recipes", RECIPES_DIR):
        candidate = folder / f"{path.stem}.yaml"
        if candidate.is_file():
            return candidate
    known = list_recipes()
    close = difflib.get_close_matches(str(name_or_path), known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(f"recipe {str(name_or_path)!r} not found as a file or in {RECIPES_DIR}; known recipes: {', '.join(known) or 'none'}.{hint}")


def list_recipes() -> list[str]:
    """Return the names of the recipes shipped in ``recipes/``."""
    folders = {RECIPES_DIR, Path.cwd() / "recipes"}
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def _apply_override(data: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise RecipeError(f"override {override!r} must look like section.key=value, for example train.epochs=3")
    key, value = override.split("=", 1)
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {override!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(value)


def _build(cls: type, data: Any, section: str) -> Any:
    """Build dataclass ``cls`` from ``data``; ``section`` is its dotted key ("" for the recipe)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{section or 'the recipe'} must be a mapping, got {type(data).__name__} ({data!r})")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        prefix = f"{section}: " if section else ""
        raise RecipeError(f"{prefix}unknown key {unknown[0]!r}{hint} (allowed: {', '.join(names)})")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{section}.{key}" if section else key
        kwargs[key] = _build(hint, value, path) if dataclasses.is_dataclass(hint) else _check_type(hint, value, path)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise RecipeError(f"{section or 'recipe'}: {error}") from error
    except ValueError as error:  # the dataclasses' own checks name the full key already
        raise RecipeError(str(error)) from error


def _check_type(hint: Any, value: Any, where: str) -> Any:
    allowed = _allowed_types(hint)
    if allowed is None or isinstance(value, allowed):
        if isinstance(value, bool) and bool not in allowed and allowed is not None:
            raise RecipeError(f"{where} must be {_type_names(allowed)}, got the boolean {value!r}")
        return value
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise RecipeError(f"{where} must be {_type_names(allowed)}, got {type(value).__name__} ({value!r})")


def _allowed_types(hint: Any) -> tuple[type, ...] | None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        found: list[type] = []
        for arg in typing.get_args(hint):
            sub = _allowed_types(arg)
            if sub is None:
                return None
            found.extend(sub)
        return tuple(found)
    if hint is type(None):
        return (type(None),)
    if hint is Any:
        return None
    if origin is not None:
        return (list, tuple) if origin in (list, tuple) else (origin,)
    return (hint,) if isinstance(hint, type) else None


def _type_names(types: tuple[type, ...]) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "a mapping", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))
