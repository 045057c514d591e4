"""The trainer's settings, as a dataclass that recipes fill in."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GuardConfig", "TrainConfig"]


@dataclass
class GuardConfig:
    """Divergence guard: what counts as divergence and how often to retry.

    A step diverges when its loss, any logged energy or the gradient norm is non-finite, or when
    the loss or an energy exceeds ``max_abs`` in magnitude. The guard then restores the last good
    state (model, optimizer, objective state such as a replay buffer), multiplies the learning
    rate by ``lr_factor`` and goes on, at most ``max_retries`` times in a run.
    """

    enabled: bool = True
    max_abs: float = 1e6
    max_retries: int = 3
    lr_factor: float = 0.5
    snapshot_every: int = 50  # steps between in-memory snapshots of the last good state


@dataclass
class TrainConfig:
    """Optimisation, precision, seeding, logging and checkpoint settings of one training run."""

    epochs: int = 10
    max_steps: int | None = None  # stop early after this many optimizer steps
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)  # adam and adamw
    schedule: str = "cosine"  # constant | cosine | step
    warmup_steps: int = 0
    milestones: list[int] = field(default_factory=list)  # epochs at which "step" multiplies lr by gamma
    gamma: float = 0.1
    grad_clip: float | None = None  # max global L2 norm of the gradients
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 elsewhere) | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None  # torch intra-op CPU threads; None keeps torch's default
    log_every: int = 10  # steps between log rows
    checkpoint_every: int | None = None  # steps between checkpoints, besides the end of each epoch
    progress: bool = True
    guard: GuardConfig = field(default_factory=GuardConfig)

    def __post_init__(self) -> None:
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        _check_positive("lr", self.lr)
        _check_choice("optimizer", self.optimizer, ("adamw", "adam", "sgd"))
        _check_choice("schedule", self.schedule, ("constant", "cosine", "step"))
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16"))
        if self.max_steps is not None:
            _check_positive("max_steps", self.max_steps)
        if self.grad_clip is not None:
            _check_positive("grad_clip", self.grad_clip)
        if self.threads is not None:
            _check_positive("threads", self.threads)
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        self.betas = tuple(self.betas)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"train.{name} must be a number > 0, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"train.{name} must be one of {', '.join(choices)}; got {value!r}")
