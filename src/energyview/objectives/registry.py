"""One string factory for training objectives, so that recipes can name them."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from .base import Objective

__all__ = ["build_objective", "list_objectives", "register_objective"]

_OBJECTIVES: dict[str, Callable[..., Objective]] = {}


def register_objective(name: str, builder: Callable[..., Objective], overwrite: bool = False) -> None:
    """Register ``builder(**options) -> Objective`` under ``name``."""
    if name in _OBJECTIVES and not overwrite:
        raise ValueError(f"objective {name!r} is already registered; pass overwrite=True to replace it")
    _OBJECTIVES[name] = builder


def list_objectives() -> list[str]:
    return sorted(_OBJECTIVES)


def build_objective(name: str, **options: Any) -> Objective:
    """Build the objective registered as ``name`` with ``options``."""
    if name not in _OBJECTIVES:
        close = difflib.get_close_matches(name, list(_OBJECTIVES), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown objective {name!r}; known objectives: {', '.join(list_objectives())}.{hint}")
    try:
        return _OBJECTIVES[name](**options)
    except TypeError as error:
        raise ValueError(f"invalid options for objective {name!r}: {error}") from error
