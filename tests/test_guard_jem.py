"""The divergence guard around JEM training: unstable runs, sampler failures, checkpoints on disk."""

import hashlib
import logging
import math
import re

import pytest
import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

import energyview.training.trainer as trainer_module
from energyview.data import build_dataset
from energyview.energies import ClassifierEnergy
from energyview.networks import build_network
from energyview.objectives import JointEnergyObjective
from energyview.sampling import SamplerDivergenceError
from energyview.training import DivergenceError, GuardConfig, TrainConfig, Trainer, load_checkpoint


def _digits_subset(count=256):
    return Subset(build_dataset("digits", split="train"), range(count))


def _record_saves(monkeypatch):
    """Record the SHA-256 of every checkpoint the trainer writes, in order."""
    hashes = []
    original = trainer_module.save_checkpoint

    def recording_save(state, path):
        written = original(state, path)
        hashes.append(hashlib.sha256(written.read_bytes()).hexdigest())
        return written

    monkeypatch.setattr(trainer_module, "save_checkpoint", recording_save)
    return hashes


def test_unstable_jem_trips_guard_and_keeps_checkpoint(tmp_path, monkeypatch, caplog):
    # lr 0.1 with one Langevin step: the energies of this small CNN blow up within a few dozen steps.
    hashes = _record_saves(monkeypatch)
    torch.manual_seed(0)
    model = ClassifierEnergy(build_network("digits-cnn", width=8))
    objective = JointEnergyObjective(n_steps=1, buffer_size=256, grad_ratio_every=0)
    config = TrainConfig(epochs=10, batch_size=32, lr=0.1, optimizer="adam", schedule="constant", seed=0,
                         progress=False, device="cpu", log_every=1, checkpoint_every=4,
                         guard=GuardConfig(max_retries=2, snapshot_every=5))
    trainer = Trainer(model, objective, _digits_subset(), config, tmp_path)

    error = None
    with caplog.at_level(logging.WARNING, logger="energyview.training.guard"):
        try:
            trainer.fit()
        except DivergenceError as raised:
            error = str(raised)

    trips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("divergence at step")]
    assert trips or error, "lr 0.1 with one Langevin step was expected to diverge"
    for message in trips + ([error] if error else []):
        # names the step and the offending value: "step 35: |loss| = 1.058e+06" or "step 12: loss = nan"
        assert re.search(r"step \d+: \|?\w+\|? = \S+", message), message
    if error is None:
        return  # recovered: the run finished with a smaller lr

    assert "diverged at step" in error
    # The checkpoint on disk is the last one written before the failure, byte for byte.
    path = tmp_path / "checkpoint-last.pt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashes[-1]
    state = load_checkpoint(tmp_path)
    assert state["finished"] is False

    fresh = ClassifierEnergy(build_network("digits-cnn", width=8))
    fresh.load_state_dict(state["model"])
    restored = JointEnergyObjective(n_steps=1, buffer_size=256)
    restored.load_state_dict(state["objective"])
    assert all(torch.isfinite(value).all() for value in state["model"].values())
    x, _ = build_dataset("digits", split="test")[0]
    assert math.isfinite(fresh.free_energy(x.unsqueeze(0)).item())
    assert torch.isfinite(restored.buffer.chains).all()


class FlakySamplerObjective(JointEnergyObjective):
    """JEM objective whose sampler fails once on call ``fail_call``, after corrupting its buffer."""

    def __init__(self, fail_call, **options):
        super().__init__(**options)
        self.fail_call = fail_call
        self.calls = 0

    def sample_negatives(self, model, batch_size, like):
        self.calls += 1
        if self.calls == self.fail_call:
            self.buffer.chains.fill_(float("nan"))  # as if chains had been written before the failure
            raise SamplerDivergenceError("sampler diverged at step 7 of 20: 3 of 32 chains are non-finite (chain 4: max |x| = nan)")
        return super().sample_negatives(model, batch_size, like)


def _toy_data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(64, 4, generator=g) * 2 - 1, torch.arange(64) % 3)


def _toy_config(**overrides):
    options = dict(epochs=2, batch_size=16, lr=1e-2, seed=0, progress=False, device="cpu", log_every=1,
                   guard=GuardConfig(max_retries=2, snapshot_every=1))
    options.update(overrides)
    return TrainConfig(**options)


def test_sampler_failure_rolls_back_and_restores_buffer(tmp_path, caplog):
    torch.manual_seed(0)
    model = ClassifierEnergy(nn.Linear(4, 3))
    objective = FlakySamplerObjective(fail_call=4, n_steps=2, buffer_size=32, sample_shape=(4,))
    trainer = Trainer(model, objective, _toy_data(), _toy_config(), tmp_path)
    with caplog.at_level(logging.WARNING, logger="energyview.training.guard"):
        trainer.fit()
    assert trainer.guard.retries == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("divergence at step 3: MCMC negatives: sampler diverged at step 7 of 20" in m for m in messages), messages
    # Without the rollback the NaN chains would have become NaN negatives on the next draws.
    assert torch.isfinite(objective.buffer.chains).all()
    assert trainer.step == 8
    assert load_checkpoint(tmp_path)["finished"] is True


def test_persistent_sampler_failure_raises_with_step(tmp_path):
    # F(x) = -(w.x) decreases without bound and nothing clamps the chains, so every draw runs away.
    torch.manual_seed(0)
    model = ClassifierEnergy(nn.Linear(4, 1))
    with torch.no_grad():
        model.net.weight.fill_(5.0)
    objective = JointEnergyObjective(n_steps=50, step_size=1.0, clamp=None, sampler_max_abs=100.0, buffer_size=32, sample_shape=(4,))
    data = TensorDataset(torch.rand(64, 4) * 2 - 1, torch.zeros(64, dtype=torch.long))
    trainer = Trainer(model, objective, data, _toy_config(), tmp_path)
    with pytest.raises(DivergenceError, match=r"diverged at step 0: MCMC negatives: sampler diverged at step \d+ of 50: .*max \|x\| = [0-9.]+"):
        trainer.fit()
    assert trainer.guard.retries == 2


def test_guard_snapshot_restores_buffer_contents():
    torch.manual_seed(0)
    model = ClassifierEnergy(nn.Linear(4, 3))
    objective = JointEnergyObjective(n_steps=1, buffer_size=32, sample_shape=(4,))
    trainer = Trainer(model, objective, _toy_data(), _toy_config())
    trainer.train_step(next(iter(trainer.loader)))  # fills the buffer and moves some chains
    trainer.guard.maybe_snapshot(trainer.step + 100)  # force a fresh snapshot of the current state
    saved = objective.buffer.chains.clone()
    objective.buffer.chains.add_(1.0)
    trainer.guard.recover(trainer.step, "loss = nan")
    assert torch.equal(objective.buffer.chains, saved)


def test_logged_values_are_finite_on_healthy_run(tmp_path):
    torch.manual_seed(0)
    model = ClassifierEnergy(nn.Linear(4, 3))
    objective = JointEnergyObjective(n_steps=2, buffer_size=32, sample_shape=(4,), grad_ratio_every=3)
    Trainer(model, objective, _toy_data(), _toy_config(), tmp_path).fit()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = header.index("train/grad_ratio_px_ce")
    values = [float(row.split(",")[column]) for row in rows[1:]]
    assert len(values) == 8
    assert all(math.isfinite(v) and v > 0 for v in values)
