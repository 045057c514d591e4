import csv
import os
import signal

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from energyview.energies import ClassifierEnergy
from energyview.objectives import ConditionalNLL, Objective, conditional_nll
from energyview.training import (
    DivergenceError,
    GuardConfig,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    load_checkpoint,
)


def _data(n=96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return TensorDataset(x, y)


def _model(seed=0):
    torch.manual_seed(seed)
    return ClassifierEnergy(nn.Sequential(nn.Linear(4, 16), nn.SiLU(), nn.Linear(16, 3)))


def _config(**kw):
    base = dict(epochs=3, batch_size=16, lr=0.01, seed=5, progress=False, log_every=1, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_conditional_nll_equals_cross_entropy():
    logits = torch.randn(7, 5, requires_grad=True)
    y = torch.randint(0, 5, (7,))
    ours = conditional_nll(-logits, y)["loss"]
    reference = nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(ours, reference)
    g_ours, = torch.autograd.grad(ours, logits)
    g_ref, = torch.autograd.grad(nn.functional.cross_entropy(logits, y), logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_conditional_nll_at_temperature():
    logits = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    ours = conditional_nll(-logits, y, temperature=0.5)["loss"]
    torch.testing.assert_close(ours, nn.functional.cross_entropy(logits / 0.5, y))


def test_label_smoothing_matches_torch():
    logits = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    model = ClassifierEnergy(nn.Identity())
    ours = ConditionalNLL(label_smoothing=0.2)(model, (logits, y))["loss"]
    torch.testing.assert_close(ours, nn.functional.cross_entropy(logits, y, label_smoothing=0.2))


def test_training_reduces_loss_and_logs(tmp_path):
    model = _model()
    trainer = Trainer(model, ConditionalNLL(), _data(), _config(epochs=5, lr=0.03), tmp_path)
    with torch.no_grad():
        before = conditional_nll(model.energy_matrix(_data().tensors[0]), _data().tensors[1])["loss"]
    trainer.fit()
    with torch.no_grad():
        after = conditional_nll(model.energy_matrix(_data().tensors[0]), _data().tensors[1])["loss"]
    assert after < 0.7 * before
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 5 * 6
    assert {"train/loss", "train/energy_pos", "train/free_energy", "train/grad_norm", "train/lr"} <= set(rows[0])
    assert load_checkpoint(tmp_path)["finished"] is True


class InterruptingObjective(ConditionalNLL):
    """Conditional NLL that sends this process SIGINT (Ctrl-C) during its n-th call."""

    def __init__(self, interrupt_call, raw=False):
        super().__init__()
        self.interrupt_call = interrupt_call
        self.raw = raw
        self.calls = 0

    def forward(self, model, batch):
        self.calls += 1
        if self.calls == self.interrupt_call:
            if self.raw:
                raise KeyboardInterrupt  # not through the signal handler
            os.kill(os.getpid(), signal.SIGINT)
        return super().forward(model, batch)


@pytest.mark.parametrize("interrupt_call,position", [(6, (0, 6)), (10, (1, 4))])
def test_resume_after_ctrl_c_matches_uninterrupted(tmp_path, interrupt_call, position):
    straight = _model()
    Trainer(straight, ConditionalNLL(), _data(), _config(), tmp_path / "a").fit()

    interrupted = _model()
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(interrupted, InterruptingObjective(interrupt_call), _data(), _config(), tmp_path / "b").fit()
    assert info.value.step == interrupt_call  # the step in progress finished before stopping
    assert info.value.checkpoint == tmp_path / "b" / "checkpoint-last.pt"
    state = load_checkpoint(tmp_path / "b")
    assert (state["epoch"], state["batch_in_epoch"]) == position
    assert state["finished"] is False
    resumed = _model(seed=99)  # a different init: everything must come from the checkpoint
    Trainer(resumed, ConditionalNLL(), _data(), _config(), tmp_path / "b").fit(resume=True)
    assert torch.equal(_params(resumed), _params(straight))


def test_ctrl_c_handler_is_removed_after_fit(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    Trainer(_model(), ConditionalNLL(), _data(), _config(epochs=1), tmp_path).fit()
    assert signal.getsignal(signal.SIGINT) is before


def test_raw_keyboard_interrupt_saves_nothing_half_done(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        Trainer(_model(), InterruptingObjective(3, raw=True), _data(), _config(), tmp_path).fit()
    assert not (tmp_path / "checkpoint-last.pt").exists()


def test_max_steps_stops_mid_epoch(tmp_path):
    trainer = Trainer(_model(), ConditionalNLL(), _data(), _config(max_steps=9, checkpoint_every=1), tmp_path)
    trainer.fit()
    state = load_checkpoint(tmp_path)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (9, 1, 3)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    trainer = Trainer(_model(), ConditionalNLL(), _data(), _config(epochs=1), tmp_path)
    assert trainer.resume() is False


class ExplodingObjective(Objective):
    """Conditional NLL whose loss turns NaN at chosen steps."""

    def __init__(self, bad_calls):
        super().__init__()
        self.bad_calls = set(bad_calls)
        self.calls = 0

    def forward(self, model, batch):
        out = ConditionalNLL()(model, batch)
        self.calls += 1
        if self.calls in self.bad_calls:
            out["loss"] = out["loss"] * float("nan")
        return out


def test_guard_recovers_from_one_nan(tmp_path, caplog):
    model = _model()
    trainer = Trainer(model, ExplodingObjective({4}), _data(), _config(epochs=2), tmp_path)
    trainer.fit()
    assert trainer.guard.retries == 1
    assert torch.isfinite(_params(model)).all()
    assert trainer.step == 12
    assert "divergence at step 3: loss = nan" in caplog.text
    assert trainer.optimizer.param_groups[0]["lr"] >= 0  # lr schedule still applies


def test_guard_gives_up_with_step_and_value(tmp_path):
    model = _model()
    config = _config(epochs=2, guard=GuardConfig(max_retries=2, snapshot_every=1), checkpoint_every=1)
    trainer = Trainer(model, ExplodingObjective(range(3, 100)), _data(), config, tmp_path)
    with pytest.raises(DivergenceError, match=r"diverged at step 2: loss = nan; gave up after 2 retries"):
        trainer.fit()
    state = load_checkpoint(tmp_path)  # the last good checkpoint is intact and loadable
    assert state["step"] == 2
    restored = _model(seed=1)
    restored.load_state_dict(state["model"])
    assert torch.isfinite(_params(restored)).all()


def test_guard_disabled_raises_at_first_problem(tmp_path):
    config = _config(guard=GuardConfig(enabled=False))
    trainer = Trainer(_model(), ExplodingObjective({2}), _data(), config, tmp_path)
    with pytest.raises(DivergenceError, match="step 1: loss = nan; the guard is disabled"):
        trainer.fit()


def test_guard_flags_exploding_energy():
    from energyview.training import DivergenceGuard

    guard = DivergenceGuard(GuardConfig(max_abs=100.0), dict, lambda s: None)
    assert guard.find_problem({"loss": 1.0, "energy_neg": -50.0}) is None
    assert guard.find_problem({"loss": 1.0, "energy_neg": -500.0}) == "|energy_neg| = 500 > guard.max_abs = 100"
    assert guard.find_problem({"loss": 1.0, "grad_norm": float("inf")}) == "grad_norm = inf"


def test_optimizers_and_schedules_run():
    for optimizer in ("sgd", "adam", "adamw"):
        for schedule in ("constant", "cosine", "step"):
            config = _config(epochs=2, optimizer=optimizer, schedule=schedule, milestones=[1], warmup_steps=2)
            trainer = Trainer(_model(), ConditionalNLL(), _data(), config)
            trainer.fit()
            assert trainer.step == 12


def test_step_schedule_decays_at_milestones():
    trainer = Trainer(_model(), ConditionalNLL(), _data(), _config(epochs=3, schedule="step", milestones=[1, 2], gamma=0.1))
    assert trainer._lr_factor(0) == 1.0
    assert trainer._lr_factor(6) == pytest.approx(0.1)
    assert trainer._lr_factor(12) == pytest.approx(0.01)


@pytest.mark.parametrize("field,value,message", [
    ("lr", 0, "train.lr must be a number > 0"),
    ("optimizer", "lion", "train.optimizer must be one of adamw, adam, sgd"),
    ("precision", "fp8", "train.precision must be one of"),
    ("epochs", 0, "train.epochs must be a number > 0"),
])
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        _config(**{field: value})


def test_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available; use device: cpu or auto"):
        Trainer(_model(), ConditionalNLL(), _data(), _config(device="cuda"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from energyview.training import checkpoint as ckpt

    path = ckpt.save_checkpoint({"model": {}, "a": torch.ones(2)}, tmp_path / "c.pt")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"model": {}, "a": torch.zeros(2)}, path)
    assert torch.equal(ckpt.load_checkpoint(path)["a"], torch.ones(2))
