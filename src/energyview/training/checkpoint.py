"""Checkpoints that survive a crash: written to a temporary file, then renamed into place."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state"]

log = logging.getLogger(__name__)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a crash mid-write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as handle:  # flush to disk before the rename makes it visible
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error when it is missing."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint-last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found; pass a run folder or a .pt file written by `energyview train`")
    # weights_only=False: checkpoints contain the config dict and RNG states next to the tensors.
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch.load raises pickle, zip and runtime errors alike
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); "
                         "pass a checkpoint-last.pt written by `energyview train`") from error
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not an energyview checkpoint (no 'model' entry); pass one written by `energyview train`")
    return state


def capture_rng_state() -> dict[str, Any]:
    """Return the Python, NumPy, torch and CUDA random states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
