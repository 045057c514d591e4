"""Post-hoc OOD scores: formulas, orientation, the registry, and scoring that leaves the model unchanged."""

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from energyview.energies import ClassifierEnergy, quadratic_energy
from energyview.ood import (
    OODScore,
    compute_scores,
    get_score,
    list_scores,
    register_score,
    score_from_energy_matrix,
)
from energyview.ood import scores as scores_module

BUILT_IN = ["energy", "entropy", "max_logit", "msp"]


@pytest.fixture
def private_registry(monkeypatch):
    """Give the test its own copy of the registry, so that scores it registers do not leak."""
    monkeypatch.setattr(scores_module, "_REGISTRY", dict(scores_module._REGISTRY))


def reference_scores(logits, temperature):
    """Compute each built-in score in float64 straight from the logits (E = -logits)."""
    logits = logits.double()
    p = torch.softmax(logits / temperature, dim=1)
    return {
        "energy": -temperature * torch.logsumexp(logits / temperature, dim=1),
        "msp": p.max(dim=1).values,
        "max_logit": logits.max(dim=1).values,
        "entropy": -(p * torch.log(p)).sum(dim=1),
    }


def test_built_in_scores_registered():
    assert set(BUILT_IN) <= set(list_scores())
    orientation = {name: get_score(name).higher_is_ood for name in BUILT_IN}
    assert orientation == {"energy": True, "entropy": True, "max_logit": False, "msp": False}


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("name", BUILT_IN)
def test_score_matches_formula(name, temperature):
    logits = 4.0 * torch.randn(16, 7, dtype=torch.float64)
    expected = reference_scores(logits, temperature)[name]
    result = score_from_energy_matrix(name, -logits, temperature)
    assert result.shape == (16,)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", BUILT_IN)
def test_score_float32_and_large_energies(name):
    # Energies around -1000 would overflow a naive exp(-E); the scores use logsumexp and log_softmax.
    logits = 1000.0 + torch.randn(8, 5)
    result = score_from_energy_matrix(name, -logits, 1.0)
    expected = reference_scores(logits, 1.0)[name]
    assert result.dtype == torch.float32
    assert torch.isfinite(result).all()
    torch.testing.assert_close(result.double(), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", BUILT_IN)
def test_declared_orientation_separates_ood(name):
    generator = torch.Generator().manual_seed(0)
    confident = 8.0 * nn.functional.one_hot(torch.randint(0, 10, (200,), generator=generator), 10)
    logits_in = confident + 0.5 * torch.randn(200, 10, generator=generator)
    logits_out = 0.5 * torch.randn(200, 10, generator=generator)

    score = get_score(name)
    values_in = score_from_energy_matrix(name, -logits_in, 1.0)
    values_out = score_from_energy_matrix(name, -logits_out, 1.0)
    oriented = torch.cat([values_in, values_out]) * (1.0 if score.higher_is_ood else -1.0)
    is_ood = [0] * 200 + [1] * 200
    assert roc_auc_score(is_ood, oriented.numpy()) > 0.9


def test_register_duplicate_raises(private_registry):
    duplicate = OODScore("energy", True, lambda matrix, temperature: matrix.sum(dim=1))
    with pytest.raises(ValueError, match="'energy' is already registered.*overwrite=True"):
        register_score(duplicate)
    assert register_score(duplicate, overwrite=True) is duplicate
    assert get_score("energy") is duplicate


def test_unknown_score_suggests_close_names():
    with pytest.raises(ValueError, match="unknown OOD score 'enrgy'.*Did you mean 'energy'"):
        get_score("enrgy")
    with pytest.raises(ValueError, match="known scores: .*max_logit"):
        score_from_energy_matrix("mahalanobis", torch.zeros(2, 3), 1.0)


def test_score_definition_errors():
    with pytest.raises(TypeError, match="higher_is_ood"):
        OODScore("bad", 1, lambda matrix, temperature: matrix)
    with pytest.raises(ValueError, match="non-empty"):
        OODScore("", True, lambda matrix, temperature: matrix)
    with pytest.raises(TypeError, match="callable"):
        OODScore("bad", True, "energy")


def test_matrix_errors():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        score_from_energy_matrix("energy", torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="energy matrix contains 1 non-finite"):
        score_from_energy_matrix("msp", torch.tensor([[0.0, float("nan")]]), 1.0)
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        score_from_energy_matrix("msp", torch.zeros(2, 3), 0.0)


# ----------------------------------------------------------------------------- compute_scores


class CountingClassifier(ClassifierEnergy):
    """A classifier energy that counts calls of energy_matrix."""

    def __init__(self, net, temperature=1.0):
        super().__init__(net, temperature)
        self.calls = 0

    def energy_matrix(self, x, candidates=None):
        self.calls += 1
        return super().energy_matrix(x, candidates)


def make_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model = CountingClassifier(net, temperature=2.0)
    model.train()
    net[3].eval()  # a mixed state: every flag must come back as it was
    with torch.no_grad():  # running statistics that differ from a batch's own statistics
        net[1].running_mean.uniform_(-1.0, 1.0)
        net[1].running_var.uniform_(0.5, 2.0)
    return model


def snapshot(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def modes(model):
    return [module.training for module in model.modules()]


def assert_unchanged(model, state, training_flags):
    assert modes(model) == training_flags
    for name, tensor in model.state_dict().items():
        assert tensor.numpy().tobytes() == state[name].numpy().tobytes(), name


def test_compute_scores_one_call_eval_mode():
    model = make_model()
    x = torch.randn(6, 4)
    result = compute_scores(model, x, ["energy", "msp", "max_logit", "entropy"])
    assert model.calls == 1
    assert list(result) == ["energy", "msp", "max_logit", "entropy"]

    reference = make_model().eval()
    with torch.no_grad():
        expected = reference_scores(reference.net(x), temperature=2.0)
    for name, values in result.items():
        assert not values.requires_grad
        torch.testing.assert_close(values.double(), expected[name], rtol=1e-5, atol=1e-6)


def test_compute_scores_temperature_override():
    model = make_model()
    x = torch.randn(5, 4)
    result = compute_scores(model, x, "energy", temperature=0.5)
    with torch.no_grad():
        expected = reference_scores(make_model().eval().net(x), temperature=0.5)["energy"]
    torch.testing.assert_close(result["energy"].double(), expected, rtol=1e-5, atol=1e-6)


def test_compute_scores_leaves_model_unchanged():
    model = make_model()
    x = torch.randn(6, 4)
    x_before = x.clone()
    state, flags = snapshot(model), modes(model)
    compute_scores(model, x, BUILT_IN)
    assert_unchanged(model, state, flags)
    assert torch.equal(x, x_before)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_compute_scores_restores_modes_on_error(private_registry):
    def failing(matrix, temperature):
        raise RuntimeError("score failed")

    register_score(OODScore("failing", True, failing))
    model = make_model()
    state, flags = snapshot(model), modes(model)
    with pytest.raises(RuntimeError, match="score failed"):
        compute_scores(model, torch.randn(3, 4), ["energy", "failing"])
    assert_unchanged(model, state, flags)


def test_compute_scores_unknown_name_before_model_runs():
    model = make_model()
    with pytest.raises(ValueError, match="unknown OOD score 'msp2'"):
        compute_scores(model, torch.randn(3, 4), ["energy", "msp2"])
    assert model.calls == 0
    with pytest.raises(ValueError, match="at least one"):
        compute_scores(model, torch.randn(3, 4), [])


def input_gradient_norm(model, x, temperature):
    """Toy input score: ||d F(x) / d x|| per sample, which gradients must reach."""
    x = x.detach().requires_grad_(True)
    free_energy = model.free_energy(x, temperature=temperature)
    (gradient,) = torch.autograd.grad(free_energy.sum(), x)
    return gradient.flatten(1).norm(dim=1)


def test_input_score_gets_model_and_input(private_registry):
    register_score(OODScore("toy_grad_norm", True, input_gradient_norm, needs_input=True))
    # F(x) = ||x||^2 / 2 has gradient x, so the score is ||x||.
    model = quadratic_energy()
    x = torch.randn(5, 3)
    with torch.no_grad():  # the caller's context must not switch gradients off for input scores
        result = compute_scores(model, x, ["toy_grad_norm", "energy"])
    torch.testing.assert_close(result["toy_grad_norm"], x.norm(dim=1))
    torch.testing.assert_close(result["energy"], 0.5 * x.pow(2).sum(dim=1))
    assert not result["toy_grad_norm"].requires_grad


def test_input_score_runs_in_eval_mode(private_registry):
    seen = []

    def record_mode(model, x, temperature):
        seen.append((model.training, model.net[1].training, temperature))
        return input_gradient_norm(model, x, temperature)

    register_score(OODScore("record_mode", True, record_mode, needs_input=True))
    model = make_model()
    x = torch.randn(4, 4)
    state, flags = snapshot(model), modes(model)
    compute_scores(model, x, ["record_mode"], temperature=1.5)
    assert seen == [(False, False, 1.5)]
    assert model.calls == 1  # the input score's own free_energy call, no matrix pass
    assert_unchanged(model, state, flags)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_input_score_rejected_by_matrix_path(private_registry):
    register_score(OODScore("toy_grad_norm", True, input_gradient_norm, needs_input=True))
    with pytest.raises(ValueError, match="needs the model and the input.*compute_scores"):
        score_from_energy_matrix("toy_grad_norm", torch.zeros(2, 3), 1.0)


def test_wrong_output_shape_raises(private_registry):
    register_score(OODScore("summed", True, lambda matrix, temperature: matrix.sum()))
    with pytest.raises(ValueError, match=r"'summed' returned \(\), expected a tensor of shape \[2\]"):
        score_from_energy_matrix("summed", torch.zeros(2, 3), 1.0)
