"""Time ``langevin_sample`` against a plain hand-written PyTorch Langevin loop (the floor).

Two energies: a small conv net on CIFAR-shaped inputs (the realistic case) and a tiny MLP on
2-D points (where fixed per-step overhead dominates). Both samplers run the same decoupled
update x <- x - η ∇E(x) + σ ξ for the same number of steps; runs alternate between the two, and
the script prints the median time of each and their ratio (1.00 means no overhead).

Usage: ``python benchmarks/bench_langevin.py [--steps 20] [--repeats 7] [--batch 32]``.
The machine load matters: on a shared machine run it a few times and compare medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch import nn

from energyview.energies import ClassifierEnergy
from energyview.sampling import langevin_sample

STEP_SIZE, NOISE_STD = 1.0, 0.01  # JEM's decoupled setting


def plain_langevin(energy_fn: Callable, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Run the floor: the Langevin loop that JEM-style code usually writes by hand."""
    x = x0.clone()
    for _ in range(n_steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(energy_fn(x).sum(), x)
        x = (x - STEP_SIZE * grad + NOISE_STD * torch.randn_like(x)).detach()
    return x


def library_langevin(energy_fn: Callable, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    return langevin_sample(energy_fn, x0, n_steps=n_steps, step_size=STEP_SIZE, noise_std=NOISE_STD).samples


def conv_energy() -> ClassifierEnergy:
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.SiLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.SiLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    return ClassifierEnergy(net, check_inputs=False).eval()


def mlp_energy() -> ClassifierEnergy:
    net = nn.Sequential(nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 10))
    return ClassifierEnergy(net, check_inputs=False).eval()


def time_once(run: Callable, model: ClassifierEnergy, x0: torch.Tensor, n_steps: int) -> float:
    if x0.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(model.free_energy, x0, n_steps)
    if x0.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(name: str, model: ClassifierEnergy, x0: torch.Tensor, n_steps: int, repeats: int) -> None:
    """Print median times of both samplers over alternating runs, after one warm-up run each."""
    model = model.to(x0.device)
    for run in (plain_langevin, library_langevin):
        time_once(run, model, x0, n_steps)
    plain, library = [], []
    for _ in range(repeats):
        plain.append(time_once(plain_langevin, model, x0, n_steps))
        library.append(time_once(library_langevin, model, x0, n_steps))
    plain_median, library_median = statistics.median(plain), statistics.median(library)
    overhead_us = (library_median - plain_median) / n_steps * 1e6
    print(
        f"{name:<28} {x0.device.type:<5} plain {plain_median * 1e3:9.2f} ms   langevin_sample "
        f"{library_median * 1e3:9.2f} ms   ratio {library_median / plain_median:5.2f}   "
        f"overhead {overhead_us:8.1f} us/step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="Langevin steps per run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per sampler (median is reported)")
    parser.add_argument("--batch", type=int, default=32, help="chains per run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.steps} steps, {args.repeats} repeats")
    for device in devices:
        images = torch.rand(args.batch, 3, 32, 32, device=device) * 2 - 1
        points = torch.randn(args.batch, 2, device=device)
        compare(f"conv net, {args.batch}x3x32x32", conv_energy(), images, args.steps, args.repeats)
        compare(f"tiny MLP, {args.batch}x2", mlp_energy(), points, args.steps, args.repeats)


if __name__ == "__main__":
    main()
