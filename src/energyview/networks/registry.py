"""One string factory for the networks that recipes name."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from torch import nn

__all__ = ["build_network", "list_networks", "register_network"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_network(name: str, builder: Callable[..., nn.Module], overwrite: bool = False) -> None:
    """Register ``builder(num_classes=..., in_channels=..., **kwargs)`` under ``name``."""
    if name in _BUILDERS and not overwrite:
        raise ValueError(f"network {name!r} is already registered; pass overwrite=True to replace it")
    _BUILDERS[name] = builder


def list_networks() -> list[str]:
    """Return the registered network names, plus the ``timm:`` and ``hf:`` prefixes."""
    return sorted(_BUILDERS) + ["timm:<model name>", "hf:<local dir or hub id>"]


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the network ``name``: a registered name, ``timm:<model>`` or ``hf:<dir or hub id>``."""
    if name.startswith("timm:"):
        from ..adapters.timm import create_timm_network

        return create_timm_network(name[len("timm:"):], **kwargs)
    if name.startswith("hf:"):
        from ..adapters.transformers import load_transformers_network

        return load_transformers_network(name[len("hf:"):], **kwargs)
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, list(_BUILDERS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown network {name!r}; known networks: {', '.join(list_networks())}.{hint}")
    return _BUILDERS[name](**kwargs)
