"""Gathering across ranks: 2 CPU processes on gloo must match one process on the global batch."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from energyview.objectives.distributed import gather_with_grad, gather_without_grad, reduce_gradients, world_info

TOL = 1e-5
WORKER = Path(__file__).with_name("ddp_worker.py")


def load_worker_module():
    """Import tests/ddp_worker.py by path, whatever pytest's import mode."""
    spec = importlib.util.spec_from_file_location("energyview_ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ddp_worker = load_worker_module()


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_ranks(out_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # keep gloo on the loopback interface
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_loopback_port()),
        str(WORKER), str(out_dir),
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp")
    completed = launch_two_ranks(out_dir)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.parametrize("case", ddp_worker.CASES)
def test_two_ranks_match_one_process(rank_results, case):
    expected = ddp_worker.run_case(case, slice(0, ddp_worker.GLOBAL_BATCH))
    assert expected["grads"], "the single-process run produced no gradients"
    for rank, results in enumerate(rank_results):
        got = results[case]
        assert abs(got["loss"].item() - expected["loss"].item()) < TOL, (rank, got["loss"], expected["loss"])
        assert sorted(got["grads"]) == sorted(expected["grads"]), rank
        for name, grad in expected["grads"].items():
            torch.testing.assert_close(got["grads"][name], grad, atol=TOL, rtol=0, msg=f"rank {rank}, {name}")


def test_reduce_gradients_across_ranks(rank_results):
    for rank, results in enumerate(rank_results):
        checks = results["reduce_checks"]
        assert torch.equal(checks["mean_shared"], torch.full((3,), 1.5, dtype=torch.float64)), rank
        assert torch.equal(checks["mean_rank_zero_only"], torch.full((2,), 2.0, dtype=torch.float64)), rank
        assert bool(checks["unused_grad_is_none"]), rank
        assert torch.equal(checks["sum_shared"], torch.full((3,), 3.0, dtype=torch.float64)), rank


def test_gather_mismatched_shapes_raises_on_every_rank(rank_results):
    for results in rank_results:
        assert "[(2, 3), (2, 4)]" in results["reduce_checks"]["mismatch_message"]


def test_single_process_is_identity():
    features = torch.randn(3, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    assert world_info() == (0, 1)
    assert gather_with_grad(features) is features
    assert gather_without_grad(labels) is labels


def test_single_process_reduce_keeps_gradients():
    layer = torch.nn.Linear(3, 2)
    layer(torch.randn(4, 3)).sum().backward()
    before = layer.weight.grad.clone()
    reduce_gradients(layer, op="mean")
    assert torch.equal(layer.weight.grad, before)


def test_reduce_rejects_unknown_op():
    with pytest.raises(ValueError, match="op must be 'mean' or 'sum'"):
        reduce_gradients([], op="avg")


def test_gather_rejects_scalar():
    with pytest.raises(ValueError, match="got shape \\(\\)"):
        gather_with_grad(torch.tensor(1.0))
