"""The shared trainer and its pieces: config, checkpoints, logging, divergence guard."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import GuardConfig, TrainConfig
from .guard import DivergenceError, DivergenceGuard
from .logger import MetricsLogger
from .trainer import Trainer, TrainingInterrupted, resolve_device, seed_everything

__all__ = [
    "DivergenceError",
    "DivergenceGuard",
    "GuardConfig",
    "MetricsLogger",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
