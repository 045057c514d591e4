import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import TensorDataset

from energyview.energies import ClassifierEnergy
from energyview.ood.evaluation import evaluate_ood, format_table, write_report


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    net.train()
    return ClassifierEnergy(net)


def _sets():
    g = torch.Generator().manual_seed(1)
    x_in = torch.randn(40, 1, 4, 4, generator=g)
    y_in = torch.randint(0, 3, (40,), generator=g)
    x_out = 3 * torch.randn(30, 1, 4, 4, generator=g)
    return TensorDataset(x_in, y_in), TensorDataset(x_out, torch.full((30,), -1))


def test_evaluation_leaves_model_and_inputs_unchanged():
    model = _model()
    id_set, ood_set = _sets()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs_before = id_set.tensors[0].clone()
    evaluate_ood(model, id_set, {"wide": ood_set}, ["energy", "msp"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training
    assert model.net.training
    assert model.net[4].training
    assert torch.equal(id_set.tensors[0], inputs_before)
    assert all(p.grad is None for p in model.parameters())


def test_evaluation_matches_direct_computation():
    model = _model()
    id_set, ood_set = _sets()
    result = evaluate_ood(model, id_set, {"wide": ood_set}, ["energy", "msp"], temperature=2.0)
    model.eval()
    with torch.no_grad():
        logits_in = model.net(id_set.tensors[0]).double()
        logits_out = model.net(ood_set.tensors[0]).double()
    energy_in = -2.0 * torch.logsumexp(logits_in / 2.0, dim=1)
    energy_out = -2.0 * torch.logsumexp(logits_out / 2.0, dim=1)
    np.testing.assert_allclose(result.scores_in["energy"], energy_in.numpy(), rtol=1e-6)
    labels = np.r_[np.zeros(40), np.ones(30)]
    expected = roc_auc_score(labels, np.r_[energy_in.numpy(), energy_out.numpy()])
    assert abs(result.metrics["ood"]["wide"]["energy"]["auroc"] - expected) < 1e-6
    accuracy = (logits_in.argmax(1) == id_set.tensors[1]).double().mean().item()
    assert result.metrics["accuracy"] == pytest.approx(accuracy)
    assert result.metrics["score_orientation"] == {"energy": "higher_is_ood", "msp": "lower_is_ood"}


def test_empty_ood_set_is_named():
    model = _model()
    id_set, _ = _sets()
    empty = TensorDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="OOD set 'void' is empty"):
        evaluate_ood(model, id_set, {"void": empty}, ["energy"])


def test_report_files_and_table(tmp_path):
    model = _model()
    id_set, ood_set = _sets()
    result = evaluate_ood(model, id_set, {"wide": ood_set}, ["energy", "max_logit"])
    paths = write_report(result, tmp_path)
    for key in ("metrics", "table_md", "table_csv", "hist_wide", "roc_wide", "reliability"):
        assert paths[key].is_file(), key
    table = format_table(result.metrics)
    assert "| wide | max_logit |" in table
    assert "fpr95_in_positive" in table
