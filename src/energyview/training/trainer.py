"""The shared trainer: one loop for every objective (conditional, MCMC negatives, in-batch)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..energies.base import EnergyModel
from ..objectives.base import Objective
from ..sampling.langevin import SamplerDivergenceError
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .guard import DivergenceGuard
from .logger import MetricsLogger

__all__ = ["Trainer", "TrainingInterrupted", "resolve_device", "seed_everything"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint-last.pt"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training between two steps; ``checkpoint`` is where the state was saved."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"training interrupted after step {step}")
        self.step, self.checkpoint = step, checkpoint


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn the first SIGINT into a flag read between steps; a second SIGINT interrupts at once.

    Outside the main thread signal handlers cannot be installed, so Ctrl-C keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    state = {"interrupted": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if state["interrupted"]:
            raise KeyboardInterrupt
        state["interrupted"] = True
        log.warning("Ctrl-C: stopping after the current step (press again to stop at once, without saving)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: state["interrupted"]
    finally:
        signal.signal(signal.SIGINT, previous)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a device, with a clear error if absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use device: cpu or auto")
    return device


class Trainer:
    """Run an :class:`~energyview.objectives.base.Objective` over a dataset, with resume.

    Each step computes ``objective(model, batch)``, back-propagates ``"loss"``, averages
    gradients across ranks under ``torchrun``, clips them, checks every value with the divergence
    guard and only then steps the optimizer. Checkpoints (model, objective state, optimizer,
    scheduler, RNG and data position) are written atomically to ``out_dir/checkpoint-last.pt``
    at each epoch end and every ``checkpoint_every`` steps. ``fit(resume=True)`` continues from
    there, at the same place in the data order.

    Args:
        model: the energy model to train.
        objective: what to minimise; its parameters are optimised with the model's.
        dataset: training data; batches are whatever its DataLoader yields.
        config: optimisation and bookkeeping settings.
        out_dir: run folder for checkpoints and logs (``None``: nothing is written).
        extra_state: stored in the checkpoint as is (for example the recipe).
        eval_fn: called with the model after each epoch; its dict is logged under ``eval/``.
    """

    def __init__(
        self,
        model: EnergyModel,
        objective: Objective,
        dataset: Dataset,
        config: TrainConfig,
        out_dir: str | os.PathLike | None = None,
        extra_state: dict[str, Any] | None = None,
        eval_fn: Callable[[EnergyModel], dict[str, float]] | None = None,
    ) -> None:
        self.config = config
        self.rank, self.world_size = _init_distributed()
        self.device = _rank_device(resolve_device(config.device), self.rank)
        seed_everything(config.seed)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.model = model.to(self.device)
        self.objective = objective.to(self.device)
        self.dataset = dataset
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.extra_state = extra_state or {}
        self.eval_fn = eval_fn
        self.loader, self.sampler = self._make_loader()
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(dataset)} samples) yields no batch of size {config.batch_size}")
        self.params = [p for p in list(model.parameters()) + list(objective.parameters()) if p.requires_grad]
        self.optimizer = _make_optimizer(self.params, config)
        self._lr_scale = 1.0  # shrunk by the divergence guard on each retry
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.guard = DivergenceGuard(config.guard, self.state_dict, self.load_state_dict)
        self.logger = MetricsLogger(self.out_dir or ".", enabled=self.is_main and self.out_dir is not None)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def total_steps(self) -> int:
        total = self.config.epochs * self.steps_per_epoch
        return min(total, self.config.max_steps) if self.config.max_steps else total

    # ---- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "objective_extra": self.objective.extra_state_for_checkpoint(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        self.objective.load_extra_state_from_checkpoint(state.get("objective_extra", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]

    def save(self, finished: bool = False) -> Path | None:
        """Write the checkpoint atomically (main rank only)."""
        if self.out_dir is None or not self.is_main:
            return None
        state = self.state_dict()
        state.update(rng=capture_rng_state(), extra=self.extra_state, finished=finished,
                     lr_scale=self._lr_scale, guard_retries=self.guard.retries)
        return save_checkpoint(state, self.out_dir / CHECKPOINT_NAME)

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load ``path`` (default: the run folder's last checkpoint); return False if none exists."""
        if path is None and self.out_dir is not None:
            path = self.out_dir / CHECKPOINT_NAME
        if path is None or not Path(path).exists():
            return False
        path = Path(path)
        state = load_checkpoint(path, map_location=self.device)
        self.load_state_dict(state)
        self._lr_scale = state.get("lr_scale", 1.0)
        for group, base_lr in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base_lr * self._lr_factor(self.step)
        self.guard.retries = state.get("guard_retries", 0)
        restore_rng_state(state["rng"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch, self.batch_in_epoch)
        return True

    # ---- training --------------------------------------------------------------------------

    def _lr_factor(self, step: int) -> float:
        cfg = self.config
        scale = self._lr_scale
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return scale * (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            span = max(1, self.total_steps - cfg.warmup_steps)
            progress = min(1.0, (step - cfg.warmup_steps) / span)
            return scale * 0.5 * (1.0 + math.cos(math.pi * progress))
        if cfg.schedule == "step":
            epoch = step // self.steps_per_epoch
            return scale * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        return scale

    def fit(self, resume: bool = False) -> dict[str, float]:
        """Train until ``epochs`` or ``max_steps``; return the last logged values.

        Ctrl-C (SIGINT) takes effect between steps: the step in progress finishes, the checkpoint
        is saved, and :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) is raised, so that
        ``fit(resume=True)`` continues exactly. A second Ctrl-C stops at once without saving.
        """
        if resume and not self.resume():
            log.info("no checkpoint to resume from in %s; starting from scratch", self.out_dir)
        last: dict[str, float] = {}
        progress = self._progress_bar()
        try:
            with _deferred_interrupt() as interrupted:
                while self.epoch < self.config.epochs and self.step < self.total_steps:
                    last = self._run_epoch(progress, interrupted) or last
        finally:
            progress.close()
            self.logger.close()
        self.save(finished=True)
        return last

    def _stop_for_interrupt(self) -> None:
        path = self.save()
        where = f"; checkpoint saved to {path}" if path is not None else ""
        log.warning("interrupted after step %d%s", self.step, where)
        raise TrainingInterrupted(self.step, path)

    def _run_epoch(self, progress: Any, interrupted: Callable[[], bool] = lambda: False) -> dict[str, float]:
        self.model.train()
        self.objective.train()
        last: dict[str, float] = {}
        for index, batch in enumerate(self._epoch_batches()):
            if index < self.batch_in_epoch:  # resuming mid-epoch: replay the same order, skip done batches
                continue
            values = self.train_step(batch)
            if values is None:  # the guard rolled back; restart the epoch from the restored position
                progress.n = self.step
                return last
            last = values
            self.batch_in_epoch = index + 1
            progress.update(1)
            progress.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:4]}, refresh=False)
            if self.step % self.config.log_every == 0:
                self.logger.log(self.step, {**values, "lr": self.optimizer.param_groups[0]["lr"]})
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save()
            if interrupted():
                self._stop_for_interrupt()
            if self.step >= self.total_steps:
                return last
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.eval_fn is not None and self.is_main:
            self.logger.log(self.step, self.eval_fn(self.model), prefix="eval")
        self.save()
        return last

    def train_step(self, batch: Any) -> dict[str, float] | None:
        """Run one optimizer step; return the logged values, or None if the guard rolled back."""
        self.guard.maybe_snapshot(self.step)
        batch = _to_device(batch, self.device)
        try:
            with self._autocast():
                losses = self.objective(self.model, batch)
        except SamplerDivergenceError as error:
            # The objective's MCMC chains diverged before any loss existed: same rollback as a bad loss.
            return self._roll_back(f"MCMC negatives: {error}")
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.world_size > 1:
            from ..objectives.distributed import reduce_gradients

            reduce_gradients(self.params)
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["grad_norm"] = float(grad_norm)
        problem = self.guard.find_problem(values)
        if problem is not None:
            return self._roll_back(problem)
        self.optimizer.step()
        self.model.after_optimizer_step()
        self.step += 1
        self.scheduler.step()
        return values

    def _roll_back(self, problem: str) -> None:
        """Restore the guard's last good state with a smaller lr, or raise DivergenceError."""
        self.optimizer.zero_grad(set_to_none=True)
        restored_from = self.guard.recover(self.step, problem)
        self._lr_scale *= self.config.guard.lr_factor
        for group, base_lr in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base_lr * self._lr_factor(self.step)
        log.info("continuing from step %d with lr %.3g", restored_from, self.optimizer.param_groups[0]["lr"])
        return None

    # ---- helpers ---------------------------------------------------------------------------

    def _make_loader(self) -> tuple[DataLoader, Any]:
        sampler = None
        if self.world_size > 1:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(self.dataset, self.world_size, self.rank, shuffle=True, seed=self.config.seed, drop_last=True)
        self._generator = torch.Generator()
        loader = DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=len(self.dataset) >= self.config.batch_size,
            num_workers=self.config.num_workers,
            generator=self._generator,
            pin_memory=self.device.type == "cuda",
        )
        return loader, sampler

    def _epoch_batches(self):
        # The data order of an epoch depends only on (seed, epoch), so a resumed run gets the same batches.
        self._generator.manual_seed(self.config.seed * 1_000_003 + self.epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        return iter(self.loader)

    def _autocast(self):
        precision = self.config.precision
        use_bf16 = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        if not use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _progress_bar(self):
        from tqdm.auto import tqdm

        disable = not (self.config.progress and self.is_main)
        interactive = sys.stderr.isatty()  # in a log file, one line every 5 s instead of every update
        return tqdm(total=self.total_steps, initial=self.step, disable=disable, desc="train", unit="step",
                    dynamic_ncols=interactive, mininterval=0.1 if interactive else 5.0)


def _make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _init_distributed() -> tuple[int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _rank_device(device: torch.device, rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device
