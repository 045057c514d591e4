import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from energyview.energies import ClassifierEnergy
from energyview.objectives import EnergyMarginObjective, build_objective
from energyview.pipeline import WithOutliers


def test_energy_margin_loss_by_hand():
    torch.manual_seed(0)
    net = nn.Linear(3, 4)
    model = ClassifierEnergy(net)
    x_in, y_in, x_out = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]), torch.randn(6, 3) * 4
    objective = EnergyMarginObjective(weight=0.3, margin_in=-1.0, margin_out=0.5)
    out = objective(model, (x_in, y_in, x_out))

    logits_in, logits_out = net(x_in), net(x_out)
    free_in = -torch.logsumexp(logits_in, dim=1)
    free_out = -torch.logsumexp(logits_out, dim=1)
    ce = nn.functional.cross_entropy(logits_in, y_in)
    hinge_in = torch.clamp(free_in + 1.0, min=0).pow(2).mean()
    hinge_out = torch.clamp(0.5 - free_out, min=0).pow(2).mean()
    torch.testing.assert_close(out["loss"], ce + 0.3 * (hinge_in + hinge_out))
    torch.testing.assert_close(out["energy_out"], free_out.mean().detach())


def test_energy_margin_needs_outliers():
    model = ClassifierEnergy(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="set data.outliers"):
        EnergyMarginObjective()(model, (torch.randn(2, 3), torch.tensor([0, 1])))


def test_energy_margin_rejects_inverted_margins():
    with pytest.raises(ValueError, match=r"margin_out \(-30.0\) must be greater than margin_in \(-23.0\)"):
        build_objective("energy-margin", margin_out=-30.0)


def test_with_outliers_appends_outlier_inputs():
    data = TensorDataset(torch.zeros(4, 2), torch.arange(4))
    outliers = TensorDataset(torch.ones(3, 2), torch.full((3,), -1))
    x, y, outlier = WithOutliers(data, outliers)[2]
    assert torch.equal(x, torch.zeros(2))
    assert int(y) == 2
    assert torch.equal(outlier, torch.ones(2))
    with pytest.raises(ValueError, match="outlier set is empty"):
        WithOutliers(data, TensorDataset(torch.zeros(0, 2)))
