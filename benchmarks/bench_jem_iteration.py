"""Time one JEM training iteration against the K + 1 passes it needs, written by hand.

A JEM iteration with K Langevin steps needs K forward and backward passes with respect to the
chains x, plus one training forward and backward pass over data and negatives, plus the
optimizer step. The floor below is that and nothing else: a plain tensor buffer, the decoupled
update x <- clamp(x - η ∇F(x) + σ ξ), one forward pass of ``cat(data, negatives)``, CE + p(x)
loss, backward, Adam step. It is compared with

- ``objective``: :class:`~energyview.objectives.JointEnergyObjective` (replay buffer, sampler
  with divergence checks, energy model with input checks) + backward + Adam step;
- ``trainer``: the same through ``Trainer.train_step``, which adds the divergence guard (a
  state snapshot every 50 steps), gradient-norm computation and the logged values.

Runs alternate between the three. The script prints the median of each and its ratio to the
floor, where 1.00 means no overhead and the target is at most 1.10. ``--grad-ratio-every`` sets how
often the objective measures its gradient-norm ratio (two extra backward passes); 0, the
default, leaves that deliberate extra cost out of the comparison.

Usage: ``python benchmarks/bench_jem_iteration.py [--steps 20] [--repeats 15] [--threads N]``.
On a shared machine run it a few times and compare medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from energyview.energies import ClassifierEnergy
from energyview.networks import build_network
from energyview.objectives import JointEnergyObjective
from energyview.training import GuardConfig, TrainConfig, Trainer

STEP_SIZE, NOISE_STD, REINIT_PROB, BUFFER_SIZE = 1.0, 0.01, 0.05, 1000  # JEM's sampler, a smaller buffer


def cifar_conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.SiLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


class PlainJEM:
    """The floor: a hand-written JEM iteration with a tensor replay buffer."""

    def __init__(self, net: nn.Module, sample_shape: tuple[int, ...], n_steps: int) -> None:
        self.net, self.n_steps = net, n_steps
        self.buffer = torch.rand(BUFFER_SIZE, *sample_shape) * 2 - 1
        self.optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(self.net(x), dim=1)

    def sample(self, batch_size: int) -> torch.Tensor:
        slots = torch.randperm(BUFFER_SIZE)[:batch_size]
        x = self.buffer[slots]
        restart = torch.rand(batch_size) < REINIT_PROB
        x[restart] = torch.rand_like(x[restart]) * 2 - 1
        for _ in range(self.n_steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(self.free_energy(x).sum(), x)
            x = (x - STEP_SIZE * grad + NOISE_STD * torch.randn_like(x)).clamp(-1.0, 1.0).detach()
        self.buffer[slots] = x
        return x

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        negatives = self.sample(x.shape[0])
        logits = self.net(torch.cat([x, negatives]))
        logits_pos, logits_neg = logits[: x.shape[0]], logits[x.shape[0]:]
        free_pos, free_neg = -torch.logsumexp(logits_pos, 1), -torch.logsumexp(logits_neg, 1)
        loss = F.cross_entropy(logits_pos, y) + free_pos.mean() - free_neg.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class LibraryJEM:
    """The objective with an Adam step, as a user's own loop would call it."""

    def __init__(self, net: nn.Module, sample_shape: tuple[int, ...], n_steps: int, grad_ratio_every: int) -> None:
        self.model = ClassifierEnergy(net)
        self.objective = JointEnergyObjective(n_steps=n_steps, step_size=STEP_SIZE, noise_std=NOISE_STD, buffer_size=BUFFER_SIZE,
                                              reinit_prob=REINIT_PROB, sample_shape=sample_shape, grad_ratio_every=grad_ratio_every)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        loss = self.objective(self.model, (x, y))["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class TrainerJEM:
    """The objective run by ``Trainer.train_step`` (guard, grad norm, logged values)."""

    def __init__(self, net: nn.Module, sample_shape: tuple[int, ...], n_steps: int, grad_ratio_every: int,
                 data: torch.utils.data.Dataset) -> None:
        library = LibraryJEM(net, sample_shape, n_steps, grad_ratio_every)
        config = TrainConfig(epochs=1, batch_size=64, optimizer="adam", lr=1e-4, schedule="constant", device="cpu",
                             progress=False, guard=GuardConfig(snapshot_every=50))
        self.trainer = Trainer(library.model, library.objective, data, config)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.trainer.train_step((x, y))


def time_once(runner, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    runner.step(x, y)
    return time.perf_counter() - start


def compare(name: str, make_net: Callable[[], nn.Module], sample_shape: tuple[int, ...], batch: int, args) -> None:
    torch.manual_seed(0)
    x = torch.rand(batch, *sample_shape) * 2 - 1
    y = torch.randint(0, 10, (batch,))
    data = torch.utils.data.TensorDataset(x, y)
    runners = {
        "plain": PlainJEM(make_net(), sample_shape, args.steps),
        "objective": LibraryJEM(make_net(), sample_shape, args.steps, args.grad_ratio_every),
        "trainer": TrainerJEM(make_net(), sample_shape, args.steps, args.grad_ratio_every, data),
    }
    times: dict[str, list[float]] = {key: [] for key in runners}
    for _ in range(2):  # warm-up
        for runner in runners.values():
            time_once(runner, x, y)
    for _ in range(args.repeats):
        for key, runner in runners.items():
            times[key].append(time_once(runner, x, y))
    medians = {key: statistics.median(values) for key, values in times.items()}
    print(f"{name:<30} plain {medians['plain'] * 1e3:8.1f} ms   objective {medians['objective'] * 1e3:8.1f} ms "
          f"(ratio {medians['objective'] / medians['plain']:.3f})   trainer {medians['trainer'] * 1e3:8.1f} ms "
          f"(ratio {medians['trainer'] / medians['plain']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="Langevin steps K per iteration (JEM: 20)")
    parser.add_argument("--repeats", type=int, default=15, help="timed iterations per runner (median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--grad-ratio-every", type=int, default=0, help="objective's grad_ratio_every (0: off)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, K = {args.steps} Langevin steps, "
          f"{args.repeats} repeats, grad_ratio_every = {args.grad_ratio_every}")
    compare("digits-cnn, batch 64, 1x8x8", lambda: build_network("digits-cnn", width=32), (1, 8, 8), 64, args)
    compare("conv net, batch 32, 3x32x32", cifar_conv_net, (3, 32, 32), 32, args)


if __name__ == "__main__":
    main()
