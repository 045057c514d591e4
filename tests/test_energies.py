import collections
import math

import pytest
import torch
from torch import nn

from energyview.energies import (
    ClassifierEnergy,
    FunctionEnergy,
    check_temperature,
    free_energy_from_matrix,
    quadratic_energy,
    scoring_mode,
)


def _net(out_features=4):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 8), nn.SiLU(), nn.Linear(8, out_features))


def test_energy_matrix_is_negative_logits():
    net = _net()
    model = ClassifierEnergy(net)
    x = torch.randn(5, 3)
    assert torch.equal(model.energy_matrix(x), -net(x))


@pytest.mark.parametrize("temperature", [0.25, 1.0, 3.0])
def test_free_energy_closed_form(temperature):
    net = _net()
    model = ClassifierEnergy(net, temperature=temperature)
    x = torch.randn(6, 3, dtype=torch.float64)
    net.double()
    logits = net(x)
    expected = -temperature * torch.log(torch.exp(logits / temperature).sum(dim=1))
    torch.testing.assert_close(model.free_energy(x), expected, rtol=0, atol=1e-12)


def test_log_prob_matches_softmax_at_temperature():
    net = _net()
    model = ClassifierEnergy(net, temperature=2.0)
    x = torch.randn(4, 3)
    expected = torch.log(torch.softmax(net(x) / 2.0, dim=1))
    torch.testing.assert_close(model.log_prob(x), expected, rtol=1e-5, atol=1e-6)


def test_paired_energy_gathers_labels():
    model = ClassifierEnergy(_net())
    x = torch.randn(3, 3)
    y = torch.tensor([0, 3, 1])
    matrix = model.energy_matrix(x)
    assert torch.equal(model.energy(x, y), torch.stack([matrix[i, y[i]] for i in range(3)]))


def test_free_energy_is_stable_for_huge_logits():
    matrix = torch.tensor([[-1000.0, -999.0], [1000.0, 1001.0]])
    free = free_energy_from_matrix(matrix)
    expected = torch.tensor([-1000.0 - math.log1p(math.exp(-1.0)), 1000.0 - math.log1p(math.exp(-1.0))])
    torch.testing.assert_close(free, expected)


def test_function_energy_free_energy_equals_energy():
    model = quadratic_energy(scale=0.5)
    x = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    torch.testing.assert_close(model.free_energy(x, temperature=7.0), torch.tensor([2.0, 1.0]))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_temperature_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        ClassifierEnergy(_net(), temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        check_temperature(bad)


def test_temperature_rejects_non_numbers():
    with pytest.raises(TypeError, match="temperature must be a number"):
        check_temperature("1")
    with pytest.raises(TypeError):
        check_temperature(True)


def test_setting_temperature_validates():
    model = ClassifierEnergy(_net())
    with pytest.raises(ValueError, match="got 0.0"):
        model.temperature = 0.0
    assert model.temperature == 1.0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises(value):
    model = ClassifierEnergy(_net())
    x = torch.randn(4, 3)
    x[2, 1] = value
    with pytest.raises(ValueError, match=r"input x contains 1 non-finite value\(s\).*index \(2, 1\)"):
        model.energy_matrix(x)


def test_labels_out_of_range_raise():
    model = ClassifierEnergy(_net(4))
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="label 4 is out of range for 4 candidates"):
        model.energy(x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="label -1 is out of range"):
        model.energy(x, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"labels must have shape \[2\]"):
        model.energy(x, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="integer tensor"):
        model.energy(x, torch.tensor([0.0, 1.0]))


def test_label_zero_is_accepted():
    model = ClassifierEnergy(_net(4))
    x = torch.randn(1, 3)
    assert model.energy(x, torch.tensor([0])).shape == (1,)


def test_logits_of_wrong_rank_raise():
    model = ClassifierEnergy(nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match=r"logits must be \[B, num_classes\], got shape \(2, 2, 3, 3\)"):
        model.energy_matrix(torch.randn(2, 1, 3, 3))


def test_function_energy_checks_shape():
    model = FunctionEnergy(lambda x: x.sum())
    with pytest.raises(ValueError, match=r"must return \[B\] = \[3\]"):
        model.energy_matrix(torch.randn(3, 2))


def test_scoring_mode_restores_each_submodule():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    net.train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    with scoring_mode(net):
        assert not any(m.training for m in net.modules())
    assert net.training and net[2].training
    assert not net[1].training


def test_scoring_mode_restores_on_exception():
    net = nn.Sequential(nn.Linear(3, 3))
    net.train()
    with pytest.raises(RuntimeError):
        with scoring_mode(net):
            raise RuntimeError("boom")
    assert net.training
