import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from energyview.energies import CandidateSet, ContrastiveEnergy, EnergyModel, normalize_features
from energyview.energies import contrastive as contrastive_energy
from energyview.objectives import CLIPObjective
from energyview.training import TrainConfig, Trainer


def two_tower(scale=1 / 0.07, bias=None, temperature=1.0, learn_scale=True):
    torch.manual_seed(0)
    return ContrastiveEnergy(
        nn.Linear(5, 4, dtype=torch.float64),
        nn.Linear(3, 4, dtype=torch.float64),
        init_scale=scale,
        learn_scale=learn_scale,
        bias=bias,
        temperature=temperature,
    ).double()


def direct_energies(model, x, y, scale, bias=0.0):
    """E_ij = -(scale * <a_i, b_j> / (|a_i| |b_j|) + bias), one pair at a time in NumPy."""
    a = model.encoder_x(x).detach().numpy()
    b = model.encoder_y(y).detach().numpy()
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            cos = a[i] @ b[j] / (np.linalg.norm(a[i]) * np.linalg.norm(b[j]))
            out[i, j] = -(scale * cos + bias)
    return out


def test_energy_matrix_matches_direct_formula():
    model = two_tower(scale=12.5)
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    expected = direct_energies(model, x, y, 12.5)
    # rtol 1e-6: ln(12.5) is rounded to float32 when the parameter is created.
    np.testing.assert_allclose(model.energy_matrix(x, y).detach().numpy(), expected, rtol=1e-6)


def test_bias_shifts_every_energy():
    model = two_tower(scale=10.0, bias=-3.0)
    x, y = torch.randn(3, 5, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    expected = direct_energies(model, x, y, 10.0, bias=-3.0)
    np.testing.assert_allclose(model.energy_matrix(x, y).detach().numpy(), expected, rtol=1e-6)


def test_paired_energy_is_the_diagonal():
    model = two_tower(scale=7.0)
    x, y = torch.randn(5, 5, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    expected = np.diag(direct_energies(model, x, y, 7.0))
    np.testing.assert_allclose(model.paired_energy(x, y).detach().numpy(), expected, rtol=1e-6)


def test_paired_energy_rejects_unequal_batches():
    model = two_tower()
    with pytest.raises(ValueError, match=r"paired inputs must give features of one shape, got \(4, 4\) and \(3, 4\)"):
        model.paired_energy(torch.randn(4, 5, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_free_energy_and_log_prob_match_logsumexp(temperature):
    model = two_tower(scale=20.0, temperature=temperature)
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    energies = direct_energies(model, x, y, 20.0)
    shifted = -energies / temperature
    top = shifted.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(shifted - top).sum(axis=1))
    np.testing.assert_allclose(model.free_energy(x, y).detach().numpy(), -temperature * log_z, rtol=1e-6)
    # log_prob is float32 by the EnergyModel contract, so compare to float32 precision.
    np.testing.assert_allclose(model.log_prob(x, y).detach().numpy(), shifted - log_z[:, None], rtol=1e-5, atol=1e-5)


def test_contract_temperature_multiplies_tau():
    """softmax(-E / T) with scale s equals softmax(-E' / 1) with scale s / T."""
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    hot = two_tower(scale=20.0, temperature=4.0)
    cool = two_tower(scale=5.0, temperature=1.0)
    torch.testing.assert_close(hot.log_prob(x, y), cool.log_prob(x, y))


def test_stored_candidates_give_classifier_contract():
    model = two_tower(scale=9.0)
    x, y = torch.randn(5, 5, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    direct = model.energy_matrix(x, y).detach()
    model.set_candidates(y, names=["a", "b", "c"])
    assert isinstance(model, EnergyModel)
    assert model.candidates.names == ("a", "b", "c")
    torch.testing.assert_close(model.energy_matrix(x).detach(), direct)
    labels = torch.tensor([2, 0, 1, 1, 0])
    expected = direct[torch.arange(5), labels]
    torch.testing.assert_close(model.energy(x, labels).detach(), expected)


def test_candidate_set_equals_raw_candidates():
    model = two_tower(scale=9.0)
    x, y = torch.randn(5, 5, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    embeddings = model.encoder_y(y).detach() * 4.0  # scaled rows: the set normalises them
    torch.testing.assert_close(model.energy_matrix(x, CandidateSet(embeddings)), model.energy_matrix(x, y))


def test_missing_candidates_name_the_fix():
    model = two_tower()
    with pytest.raises(ValueError, match=r"no candidate set: .*set_candidates.*paired_energy"):
        model.energy_matrix(torch.randn(2, 5, dtype=torch.float64))
    model.set_candidates(torch.randn(3, 3, dtype=torch.float64))
    model.clear_candidates()
    with pytest.raises(ValueError, match="no candidate set"):
        model.energy(torch.randn(2, 5, dtype=torch.float64), torch.tensor([0, 1]))


def test_candidates_of_another_model_are_rejected():
    model = two_tower()
    with pytest.raises(ValueError, match="candidate features have dimension 7 but x features have 4"):
        model.energy_matrix(torch.randn(2, 5, dtype=torch.float64), CandidateSet(torch.randn(3, 7)))


def test_candidates_stay_out_of_the_state_dict():
    model = two_tower()
    model.set_candidates(torch.randn(3, 3, dtype=torch.float64))
    assert not any("candidate" in key for key in model.state_dict())
    assert model.to(torch.float32).candidates.embeddings.dtype == torch.float32


def test_shared_encoder_encodes_both_sides():
    model = ContrastiveEnergy(nn.Linear(4, 3), init_scale=2.0, learn_scale=False)
    x = torch.randn(5, 4)
    assert model.shared_encoder
    torch.testing.assert_close(model.encode_x(x), model.encode_y(x))
    torch.testing.assert_close(model.paired_energy(x, x), torch.full((5,), -2.0))


def test_initial_scale_is_clip_init():
    model = ContrastiveEnergy(nn.Identity())
    assert isinstance(model.log_scale, nn.Parameter)
    assert model.log_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert model.scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert contrastive_energy.MAX_SCALE == 100.0


def test_fixed_scale_is_a_buffer():
    model = ContrastiveEnergy(nn.Linear(2, 2), init_scale=2.0, learn_scale=False)
    assert "log_scale" in dict(model.named_buffers())
    assert "log_scale" not in dict(model.named_parameters())
    assert model.scale.item() == pytest.approx(2.0)


def test_shared_log_scale_is_the_same_parameter():
    log_scale = nn.Parameter(torch.tensor(1.5))
    model = ContrastiveEnergy(nn.Identity(), log_scale=log_scale)
    assert model.log_scale is log_scale
    with torch.no_grad():
        log_scale.fill_(2.0)
    assert model.scale.item() == pytest.approx(math.exp(2.0))


def test_scale_above_cap_reads_100_without_gradient():
    model = ContrastiveEnergy(nn.Identity(), init_scale=500.0)
    assert model.scale.item() == 100.0
    model.scale.backward()
    assert model.log_scale.grad.item() == 0.0
    model.clamp_log_scale_()
    assert model.log_scale.item() == pytest.approx(math.log(100.0))


class NearDuplicatePairs(Dataset):
    """x_i and y_i = x_i + small noise: with one shared encoder every positive pair is already aligned,
    so CLIP's loss keeps falling as the scale grows."""

    def __init__(self, n=64):
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 6, generator=generator)
        self.y = self.x + 0.01 * torch.randn(n, 6, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def test_scale_stays_capped_after_training_steps():
    torch.manual_seed(0)
    model = ContrastiveEnergy(nn.Linear(6, 8))
    config = TrainConfig(epochs=3, batch_size=16, optimizer="sgd", momentum=0.0, lr=10.0, schedule="constant",
                         progress=False, device="cpu")
    Trainer(model, CLIPObjective(), NearDuplicatePairs(), config).fit()
    # The large rate pushes the raw parameter up from ln(1 / 0.07) = 2.66; only the trainer's
    # after_optimizer_step clamp stops it at exactly ln 100.
    assert model.log_scale.item() == pytest.approx(math.log(100.0))
    assert model.scale.item() <= 100.0
    assert model.scale.item() == pytest.approx(100.0)


def test_half_features_normalise_in_float32():
    half = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float16)
    out = normalize_features(half)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


def test_match_probability_is_sigmoid_of_logits():
    model = two_tower(scale=10.0, bias=-5.0)
    x, y = torch.randn(3, 5, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    logits = -direct_energies(model, x, y, 10.0, bias=-5.0)
    np.testing.assert_allclose(model.match_probability(x, y).detach().numpy(), 1 / (1 + np.exp(-logits)), rtol=1e-6)


def test_encoder_output_must_be_a_matrix():
    model = ContrastiveEnergy(nn.Identity())
    with pytest.raises(ValueError, match=r"encoder_x must return floating-point features \[N, D\], got a torch.float32 tensor of shape \(2, 3, 4\)"):
        model.encode_x(torch.randn(2, 3, 4))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), True, "10"])
def test_invalid_init_scale_is_rejected(bad):
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        ContrastiveEnergy(nn.Identity(), init_scale=bad)


def test_invalid_arguments_are_rejected():
    with pytest.raises(TypeError, match="encoder_x must be an nn.Module"):
        ContrastiveEnergy(lambda x: x)
    with pytest.raises(TypeError, match="log_scale must be a scalar nn.Parameter"):
        ContrastiveEnergy(nn.Identity(), log_scale=torch.tensor(1.0))
    with pytest.raises(ValueError, match="bias must be None, a finite number or a scalar nn.Parameter"):
        ContrastiveEnergy(nn.Identity(), bias=float("nan"))
    with pytest.raises(ValueError, match="got 1 candidate names for 2 embeddings"):
        CandidateSet(torch.eye(2), names=["one"])


def test_without_clamp_the_raw_scale_passes_the_cap(monkeypatch):
    monkeypatch.setattr(ContrastiveEnergy, "after_optimizer_step", lambda self: None)
    torch.manual_seed(0)
    model = ContrastiveEnergy(nn.Linear(6, 8))
    config = TrainConfig(epochs=3, batch_size=16, optimizer="sgd", momentum=0.0, lr=10.0, schedule="constant",
                         progress=False, device="cpu")
    Trainer(model, CLIPObjective(), NearDuplicatePairs(), config).fit()
    assert model.log_scale.item() > math.log(100.0)
    assert model.scale.item() == pytest.approx(100.0)
