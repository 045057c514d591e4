"""Tests of the MCMC samplers, the replay buffer and the chain inits.

Stationary moments are checked against closed forms: N(0, s²) for E = ||x||² / (2 s²) at T = 1,
and the variance σ² / (1 - (1 - η)²) of the recursion x <- (1 - η) x + σ ξ that decoupled
Langevin becomes on E = x² / 2.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from energyview.energies import ClassifierEnergy, quadratic_energy
from energyview.sampling import (
    ClassGaussianInit,
    LangevinConfig,
    LangevinSampler,
    ReplayBuffer,
    SamplerDivergenceError,
    UniformInit,
    available_inits,
    bn_policy,
    build_init,
    conditional_energy_fn,
    langevin_sample,
    mala_sample,
    marginal_energy_fn,
)


def half_square(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.reshape(x.shape[0], -1).pow(2).sum(dim=1)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_close_rel(value: float, expected: float, rel: float) -> None:
    assert abs(value - expected) <= rel * abs(expected), f"{value} is not within {rel:.0%} of {expected}"


# ---------------------------------------------------------------------------------------------
# Stationary distributions
# ---------------------------------------------------------------------------------------------


def test_exact_langevin_standard_normal_std():
    model = quadratic_energy(1.0)
    # From x0 = 0 the variance after t steps is (1 - 0.99^(2t)) of the stationary one: 0.998 at t = 300.
    out = langevin_sample(model.free_energy, torch.zeros(4000, 1), n_steps=300, step_size=0.01, generator=generator())
    assert out.implied_temperature == 1.0
    assert out.acceptance_rate is None
    assert_close_rel(out.samples.std().item(), 1.0, 0.05)
    assert abs(out.samples.mean().item()) < 0.05


def test_exact_langevin_2d_gaussian_std():
    model = quadratic_energy(0.5)  # E = ||x||² / (2 · 0.25)
    out = langevin_sample(model.free_energy, torch.zeros(4000, 2), n_steps=200, step_size=0.01, generator=generator(1))
    stds = out.samples.std(dim=0)
    assert_close_rel(stds[0].item(), 0.5, 0.05)
    assert_close_rel(stds[1].item(), 0.5, 0.05)


def test_exact_langevin_temperature_scales_variance():
    out = langevin_sample(
        half_square, torch.zeros(4000, 1), n_steps=300, step_size=0.01, temperature=4.0, generator=generator(2)
    )
    assert out.implied_temperature == 4.0
    assert_close_rel(out.samples.std().item(), 2.0, 0.05)  # exp(-x² / 8) is N(0, 4)


def test_decoupled_jem_setting_closed_form():
    out = langevin_sample(
        half_square, torch.randn(4000, 1), n_steps=20, step_size=1.0, noise_std=0.01, generator=generator(3)
    )
    assert out.implied_temperature == pytest.approx(5e-5, rel=1e-12)
    # η = 1 makes x <- x - x + 0.01 ξ = 0.01 ξ, so the stationary std is exactly 0.01.
    assert_close_rel(out.samples.std().item(), 0.01, 0.05)


def test_decoupled_small_step_closed_form():
    eta, sigma = 0.1, 0.1
    out = langevin_sample(
        half_square, torch.zeros(4000, 1), n_steps=300, step_size=eta, noise_std=sigma, generator=generator(4)
    )
    expected_std = math.sqrt(sigma**2 / (1.0 - (1.0 - eta) ** 2))
    assert out.implied_temperature == pytest.approx(sigma**2 / (2 * eta))
    assert_close_rel(out.samples.std().item(), expected_std, 0.05)


def test_mala_gaussian_std_and_acceptance():
    model = quadratic_energy(0.5)
    out = mala_sample(model.free_energy, torch.zeros(4000, 2), n_steps=200, step_size=0.2, generator=generator(5))
    assert 0.0 < out.acceptance_rate <= 1.0
    assert out.chain_acceptance.shape == (4000,)
    assert out.chain_acceptance.mean().item() == pytest.approx(out.acceptance_rate, abs=1e-6)
    stds = out.samples.std(dim=0)
    assert_close_rel(stds[0].item(), 0.5, 0.05)
    assert_close_rel(stds[1].item(), 0.5, 0.05)


def test_mala_correction_matters_at_large_step():
    # Unadjusted: x <- (1 - 4η) x + sqrt(2η) ξ has variance 2η / (1 - (1 - 4η)²) = 0.4167 at η = 0.2.
    model = quadratic_energy(0.5)
    out = langevin_sample(model.free_energy, torch.zeros(4000, 2), n_steps=200, step_size=0.2, generator=generator(6))
    expected_biased = math.sqrt(0.4 / (1.0 - 0.2**2))
    assert_close_rel(out.samples.std().item(), expected_biased, 0.05)
    assert out.samples.std().item() > 0.5 * 1.2


def test_mala_bounds_keep_chains_inside():
    out = mala_sample(
        lambda x: -3.0 * x.sum(dim=1), torch.zeros(500, 2), n_steps=50, step_size=0.05, bounds=(-1.0, 1.0),
        generator=generator(7),
    )
    assert out.samples.min().item() >= -1.0
    assert out.samples.max().item() <= 1.0
    assert 0.0 < out.acceptance_rate < 1.0


def test_conditional_sampling_classifier_energy():
    centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])

    class NegativeSquaredDistance(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.centres = nn.Parameter(centres.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -0.5 * (x[:, None, :] - self.centres[None]).pow(2).sum(dim=2)  # logits [B, 2]

    model = ClassifierEnergy(NegativeSquaredDistance())
    y = torch.arange(2000) % 2
    energy_fn = conditional_energy_fn(model, y)  # E(x, y) = ||x - μ_y||² / 2, so x | y ~ N(μ_y, I)
    out = langevin_sample(energy_fn, torch.zeros(2000, 2), n_steps=400, step_size=0.02, generator=generator(8))
    for label in (0, 1):
        mean = out.samples[y == label].mean(dim=0)
        assert torch.allclose(mean, centres[label], atol=0.12), (label, mean)
    assert model.net.centres.grad is None
    assert model.net.centres.requires_grad


def test_marginal_sampling_mixture_variance():
    class TwoCentres(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            centres = torch.tensor([-1.5, 1.5])
            return -0.5 * (x - centres).pow(2)  # logits [B, 2] for x of shape [B, 1]

    model = ClassifierEnergy(TwoCentres(), check_inputs=False)
    out = langevin_sample(
        marginal_energy_fn(model), torch.zeros(4000, 1), n_steps=400, step_size=0.03, generator=generator(9)
    )
    # p(x) is the equal mixture of N(-1.5, 1) and N(1.5, 1): variance 1 + 1.5² = 3.25.
    assert_close_rel(out.samples.var().item(), 3.25, 0.05)


# ---------------------------------------------------------------------------------------------
# Update rule details
# ---------------------------------------------------------------------------------------------


def test_x0_left_unchanged_and_samples_detached():
    x0 = torch.randn(16, 3)
    before = x0.clone()
    out = langevin_sample(half_square, x0, n_steps=5, step_size=0.1)
    assert torch.equal(x0, before)
    assert not out.samples.requires_grad
    assert out.samples.shape == x0.shape


def test_gradient_clip_norm_and_value():
    x0 = torch.zeros(4, 3)
    steep = lambda x: -1000.0 * x.sum(dim=1)  # ∇E = -1000 in every coordinate
    by_norm = langevin_sample(steep, x0, n_steps=1, step_size=0.5, noise_std=0.0, grad_clip=1.0)
    by_value = langevin_sample(steep, x0, n_steps=1, step_size=0.5, noise_std=0.0, grad_clip=2.0, grad_clip_mode="value")
    # Norm mode: the step is η · g / ||g|| with ||g|| = 1000 √3, so 0.5 / √3 per coordinate.
    assert torch.allclose(by_norm.samples, torch.full((4, 3), 0.5 / math.sqrt(3.0)))
    assert torch.allclose(by_value.samples, torch.full((4, 3), 0.5 * 2.0))


def test_trace_records_each_step():
    x0 = torch.full((8, 2), 3.0)
    out = langevin_sample(half_square, x0, n_steps=7, step_size=0.1, noise_std=0.0, return_trace=True)
    trace = out.energy_trace
    assert trace.energy.shape == (7,)
    assert trace.grad_norm.shape == (7,)
    assert trace.energy[0].item() == pytest.approx(9.0)  # 0.5 · (3² + 3²)
    assert trace.grad_norm[0].item() == pytest.approx(math.sqrt(18.0))
    assert trace.energy[1].item() == pytest.approx(9.0 * 0.9**2)  # noise-free x <- 0.9 x


def test_sampler_class_matches_function():
    config = LangevinConfig(n_steps=10, step_size=0.1, noise_std=0.05)
    x0 = torch.randn(8, 2)
    via_class = LangevinSampler(config)(half_square, x0, generator=generator(10))
    via_function = langevin_sample(half_square, x0, n_steps=10, step_size=0.1, noise_std=0.05, generator=generator(10))
    assert torch.equal(via_class.samples, via_function.samples)
    assert LangevinSampler(n_steps=10, step_size=0.1, noise_std=0.05).config == config


def test_config_rejects_invalid_settings():
    with pytest.raises(ValueError, match="either noise_std"):
        LangevinConfig(n_steps=5, step_size=1.0, noise_std=0.01, temperature=1.0)
    with pytest.raises(ValueError, match="step_size"):
        LangevinConfig(n_steps=5, step_size=0.0)
    with pytest.raises(ValueError, match="temperature"):
        LangevinConfig(n_steps=5, step_size=0.1, temperature=-1.0)
    with pytest.raises(ValueError, match="clamp"):
        LangevinConfig(n_steps=5, step_size=0.1, clamp=(1.0, -1.0))
    with pytest.raises(ValueError, match="grad_clip_mode"):
        LangevinConfig(n_steps=5, step_size=0.1, grad_clip=1.0, grad_clip_mode="global")
    with pytest.raises(TypeError, match="n_steps"):
        LangevinConfig(n_steps=2.5, step_size=0.1)


def test_energy_fn_shape_checked():
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        langevin_sample(lambda x: x.pow(2), torch.zeros(4, 2), n_steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        langevin_sample(lambda x: torch.zeros(x.shape[0]), torch.zeros(4, 2), n_steps=1, step_size=0.1)


# ---------------------------------------------------------------------------------------------
# Clamping and divergence detection
# ---------------------------------------------------------------------------------------------


def unbounded_below(x: torch.Tensor) -> torch.Tensor:
    return -10.0 * x.sum(dim=1)


def test_clamp_keeps_unbounded_energy_in_range():
    out = langevin_sample(unbounded_below, torch.zeros(64, 2), n_steps=50, step_size=1.0, clamp=(-1.0, 1.0))
    assert out.samples.min().item() >= -1.0
    assert out.samples.max().item() <= 1.0


def test_divergence_error_names_step_and_chains():
    # Noise-free drift of +10 per step: |x| = 50 after step 5 and 60 after step 6.
    with pytest.raises(SamplerDivergenceError, match=r"step 6 of 20: 8 of 8 chains") as info:
        langevin_sample(unbounded_below, torch.zeros(8, 2), n_steps=20, step_size=1.0, noise_std=0.0, max_abs=55.0)
    assert isinstance(info.value, RuntimeError)
    assert "max |x| = 60" in str(info.value)


def test_divergence_checked_every_n_steps():
    with pytest.raises(SamplerDivergenceError, match="step 10 of 20"):
        langevin_sample(
            unbounded_below, torch.zeros(8, 2), n_steps=20, step_size=1.0, noise_std=0.0, max_abs=55.0, check_every=5
        )


def test_nan_energy_raises_with_bad_chain_count():
    calls = {"n": 0}

    def energy(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        values = half_square(x)
        if calls["n"] == 3:
            values = values * torch.tensor([1.0, float("nan"), 1.0, 1.0])
        return values

    with pytest.raises(SamplerDivergenceError, match=r"step 3 of 10: 1 of 4 chains"):
        langevin_sample(energy, torch.zeros(4, 2), n_steps=10, step_size=0.1)


def test_mala_divergence_raises():
    with pytest.raises(SamplerDivergenceError, match="of 10"):
        mala_sample(unbounded_below, torch.zeros(8, 2), n_steps=10, step_size=1.0, max_abs=20.0)


# ---------------------------------------------------------------------------------------------
# Model state: BatchNorm statistics, modes, parameter gradients
# ---------------------------------------------------------------------------------------------


def make_batchnorm_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Linear(8, 1))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(32, 2) * 2 + 1)  # move the running statistics away from (0, 1)
    return net


def state_bytes(module: nn.Module) -> dict[str, bytes]:
    return {name: value.detach().cpu().numpy().tobytes() for name, value in module.state_dict().items()}


def test_unprotected_loop_changes_running_stats():
    # Control: a hand-written loop in train mode does update the statistics the tests below protect.
    net = make_batchnorm_net()
    before = state_bytes(net)
    x = torch.randn(16, 2).requires_grad_(True)
    torch.autograd.grad(net(x).sum(), x)
    assert state_bytes(net)["1.running_mean"] != before["1.running_mean"]


@pytest.mark.parametrize("policy, mode_inside", [("frozen", False), ("train", True)])
def test_batchnorm_stats_unchanged_by_sampling(policy, mode_inside):
    net = make_batchnorm_net()
    before = state_bytes(net)
    seen_modes = []

    def energy(x: torch.Tensor) -> torch.Tensor:
        seen_modes.append(net[1].training)
        return net(x).squeeze(1)

    langevin_sample(energy, torch.randn(16, 2), n_steps=5, step_size=0.1, model=net, batchnorm=policy)
    assert state_bytes(net) == before
    assert seen_modes == [mode_inside] * 5
    assert net.training and net[1].training
    for parameter in net.parameters():
        assert parameter.grad is None
        assert parameter.requires_grad


def test_batchnorm_bound_method_model_found():
    # A bound method's module is found without model=, so its statistics stay untouched.
    model = ClassifierEnergy(make_batchnorm_net_classifier())
    before = state_bytes(model)
    mala_sample(model.free_energy, torch.randn(16, 2), n_steps=3, step_size=0.05)
    assert state_bytes(model) == before
    assert model.net[1].training


def make_batchnorm_net_classifier() -> nn.Sequential:
    net = make_batchnorm_net()
    net[3] = nn.Linear(8, 3)
    return net


@pytest.mark.parametrize("policy", ["frozen", "train"])
def test_bn_policy_restores_on_exception(policy):
    net = make_batchnorm_net()
    net[1].eval()  # a mixed-mode model: the BatchNorm layer in eval, the rest in train
    before = state_bytes(net)
    calls = {"n": 0}

    def failing_energy(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyError("energy failed")
        return net(x).squeeze(1)

    with pytest.raises(KeyError, match="energy failed"):
        langevin_sample(failing_energy, torch.randn(16, 2), n_steps=5, step_size=0.1, model=net, batchnorm=policy)
    assert state_bytes(net) == before
    assert net.training
    assert not net[1].training
    assert all(p.requires_grad for p in net.parameters())


def test_bn_policy_train_restores_direct_forward():
    net = make_batchnorm_net()
    before = state_bytes(net)
    with bn_policy(net, "train"):
        net(torch.randn(32, 2) + 5)
        assert state_bytes(net)["1.running_mean"] != before["1.running_mean"]
    assert state_bytes(net) == before


def test_bn_policy_rejects_unknown_name():
    with pytest.raises(ValueError, match="frozen"):
        with bn_policy(nn.Linear(2, 2), "eval"):
            pass


# ---------------------------------------------------------------------------------------------
# Replay buffer
# ---------------------------------------------------------------------------------------------


def test_buffer_reinit_fraction_binomial():
    capacity, batch, draws, prob = 1000, 500, 40, 0.05
    buffer = ReplayBuffer(capacity, (3,), init="uniform", reinit_prob=prob)
    buffer.write_back(torch.arange(capacity), torch.full((capacity, 3), 5.0))  # kept chains sit at 5
    g = generator(11)
    restarted = 0
    for _ in range(draws):
        x0, _ = buffer.draw(batch, generator=g)
        fresh = (x0.abs() <= 1.0).all(dim=1)
        assert torch.all(fresh | (x0 == 5.0).all(dim=1))
        restarted += int(fresh.sum())
    n = batch * draws
    sd = math.sqrt(n * prob * (1 - prob))
    assert abs(restarted - n * prob) < 4 * sd, (restarted, n * prob, sd)


def test_buffer_reinit_prob_zero_and_one():
    buffer = ReplayBuffer(100, (2,))
    buffer.write_back(torch.arange(100), torch.full((100, 2), 5.0))
    persistent, _ = buffer.draw(50, reinit_prob=0.0, generator=generator(12))
    fresh, _ = buffer.draw(50, reinit_prob=1.0, generator=generator(12))
    assert torch.all(persistent == 5.0)
    assert torch.all(fresh.abs() <= 1.0)


def test_buffer_write_back_same_slots():
    capacity = 64
    buffer = ReplayBuffer(capacity, (3,))
    slot_ids = torch.arange(capacity, dtype=torch.float32)
    buffer.write_back(torch.arange(capacity), slot_ids[:, None].expand(capacity, 3))
    x0, indices = buffer.draw(16, reinit_prob=0.0, generator=generator(13))
    assert len(set(indices.tolist())) == 16
    assert torch.equal(x0[:, 0], indices.float())  # each chain came from its own slot

    expected = buffer.chains.clone()
    for row, slot in enumerate(indices.tolist()):
        expected[slot] = x0[row] + 1000.0
    buffer.write_back(indices, x0 + 1000.0)
    assert torch.equal(buffer.chains, expected)


def test_buffer_write_back_validates_shapes():
    buffer = ReplayBuffer(10, (3,))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        buffer.write_back(torch.tensor([0, 1]), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        buffer.write_back(torch.tensor([0, 10]), torch.zeros(2, 3))


def test_buffer_class_draw_picks_labelled_slots():
    buffer = ReplayBuffer(100, (2,), num_classes=4)
    y = torch.tensor([0, 1, 2, 3, 3, 3, 0, 2])
    _, indices = buffer.draw(8, y=y, generator=generator(14))
    assert torch.equal(buffer.labels[indices], y)
    assert torch.equal(indices % 4, y)  # slot i carries label i % num_classes


def test_buffer_state_dict_round_trip():
    data, labels = make_class_data()
    source = ReplayBuffer(90, (3,), init=ClassGaussianInit().fit(data, labels), num_classes=3)
    x0, indices = source.draw(20, generator=generator(15))
    source.write_back(indices, x0 + 1.0)

    stream = io.BytesIO()
    torch.save(source.state_dict(), stream)
    stream.seek(0)
    restored = ReplayBuffer(90, (3,), init=ClassGaussianInit(), num_classes=3)
    restored.load_state_dict(torch.load(stream))

    assert torch.equal(restored.chains, source.chains)
    assert torch.equal(restored.labels, source.labels)
    assert torch.equal(restored.init.means, source.init.means)
    assert torch.equal(restored.init.scales, source.init.scales)
    x_restored, _ = restored.draw(10, reinit_prob=0.0, generator=generator(16))
    x_source, _ = source.draw(10, reinit_prob=0.0, generator=generator(16))
    assert torch.equal(x_restored, x_source)  # no refill on resume


def test_buffer_load_rejects_other_shape_untouched():
    source = ReplayBuffer(50, (3,))
    source.draw(4, generator=generator(17))
    target = ReplayBuffer(40, (3,), init=ClassGaussianInit())
    before = target.chains.clone()
    with pytest.raises(ValueError, match=r"capacity=40"):
        target.load_state_dict(source.state_dict())
    assert torch.equal(target.chains, before)
    assert not target.filled
    assert not target.init.ready


def test_buffer_class_gaussian_reset_uses_slot_labels():
    data, labels = make_class_data()
    init = ClassGaussianInit().fit(data, labels)
    buffer = ReplayBuffer(300, (3,), init=init, num_classes=3)
    buffer.reset(generator(18))
    # 100 slots per class and per-coordinate std at most 3: 4 standard errors are 1.2.
    for label in range(3):
        mean = buffer.chains[buffer.labels == label].mean(dim=0)
        assert torch.allclose(mean, init.means[label], atol=1.2), (label, mean)


# ---------------------------------------------------------------------------------------------
# Inits
# ---------------------------------------------------------------------------------------------

CLASS_MEANS = torch.tensor([[0.0, 0.0, 0.0], [5.0, -3.0, 1.0], [-4.0, 4.0, 8.0]])


def make_class_data(per_class: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(19)
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.2, -0.3, 0.5]])
    parts = [CLASS_MEANS[c] + torch.randn(per_class, 3, generator=g) @ (mixing * (c + 1)).T for c in range(3)]
    return torch.cat(parts), torch.arange(3).repeat_interleave(per_class)


def test_class_gaussian_fit_matches_numpy():
    data, labels = make_class_data()
    init = ClassGaussianInit(ridge=1e-4).fit(data, labels)
    array, label_array = data.double().numpy(), labels.numpy()
    for c in range(3):
        rows = array[label_array == c]
        np.testing.assert_allclose(init.means[c].numpy(), rows.mean(axis=0), atol=1e-5)
        covariance = init.scales[c].double() @ init.scales[c].double().T
        np.testing.assert_allclose(covariance.numpy(), np.cov(rows, rowvar=False) + 1e-4 * np.eye(3), atol=1e-4)


def test_class_gaussian_diagonal_matches_numpy():
    data, labels = make_class_data()
    init = ClassGaussianInit(covariance="diagonal", ridge=0.0).fit(data, labels)
    array, label_array = data.double().numpy(), labels.numpy()
    for c in range(3):
        rows = array[label_array == c]
        np.testing.assert_allclose(init.scales[c].pow(2).numpy(), rows.var(axis=0, ddof=1), rtol=1e-4)


def test_class_gaussian_samples_match_fit():
    data, labels = make_class_data()
    init = ClassGaussianInit().fit(data, labels)
    samples = init.sample(20000, (3,), y=torch.full((20000,), 2), generator=generator(20))
    rows = data[labels == 2].double().numpy()
    np.testing.assert_allclose(samples.mean(dim=0).numpy(), rows.mean(axis=0), atol=0.1)
    expected = np.cov(rows, rowvar=False)
    # The standard error of each covariance entry is about 0.08 here; allow 5% of the largest variance.
    np.testing.assert_allclose(np.cov(samples.double().numpy(), rowvar=False), expected, atol=0.05 * expected.max())
    assert init.sample(10, (3,), generator=generator(21)).shape == (10, 3)


def test_class_gaussian_rejects_bad_use():
    with pytest.raises(RuntimeError, match="fit"):
        ClassGaussianInit().sample(4, (3,))
    data, labels = make_class_data(10)
    with pytest.raises(ValueError, match="class 3 has no samples"):
        ClassGaussianInit().fit(data, labels, num_classes=4)
    with pytest.raises(ValueError, match="diagonal"):
        ClassGaussianInit(max_full_dim=2).fit(data, labels)
    init = ClassGaussianInit().fit(data, labels)
    with pytest.raises(ValueError, match="fitted shape"):
        init.sample(4, (2,))


def test_build_init_registry():
    assert available_inits() == ["class-gaussian", "gaussian", "uniform"]
    uniform = build_init("uniform", low=0.0, high=2.0)
    assert isinstance(uniform, UniformInit)
    values = uniform.sample(1000, (2,), generator=generator(22))
    assert values.min().item() >= 0.0
    assert values.max().item() <= 2.0
    gaussian = build_init("gaussian", mean=3.0, std=0.5).sample(20000, (1,), generator=generator(23))
    assert gaussian.mean().item() == pytest.approx(3.0, abs=0.02)
    assert gaussian.std().item() == pytest.approx(0.5, rel=0.03)
    with pytest.raises(ValueError, match="did you mean 'uniform'"):
        build_init("unifrom")
