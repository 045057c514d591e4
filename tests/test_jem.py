"""Maximum likelihood with MCMC negatives, the JEM objective, the grad_norm score and the jem task."""

import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Subset, TensorDataset

from energyview.cli import main
from energyview.data import build_dataset
from energyview.energies import ClassifierEnergy, EnergyModel
from energyview.networks import build_network
from energyview.objectives import JointEnergyObjective, MaximumLikelihood, build_objective, coercive_wall
from energyview.ood import compute_scores, get_score
from energyview.ood.input_scores import input_gradient_norm
from energyview.pipeline import build_classifier, run_recipe
from energyview.recipes import load_recipe
from energyview.sampling import LangevinSampler, SamplerDivergenceError
from energyview.training import TrainConfig, Trainer, load_checkpoint


class QuadraticEnergy(EnergyModel):
    """E(x) = a x² / 2 with a learnable precision a: the energy of N(0, 1/a) at T = 1."""

    def __init__(self, precision):
        super().__init__()
        self.precision = nn.Parameter(torch.tensor(float(precision)))

    def energy_matrix(self, x, candidates=None):
        return (0.5 * self.precision * x.flatten(1).pow(2).sum(dim=1)).unsqueeze(1)


def _toy_classifier(temperature=1.0):
    torch.manual_seed(3)
    return ClassifierEnergy(nn.Linear(4, 3), temperature=temperature)


# ---- maximum likelihood ---------------------------------------------------------------------


def test_ml_gradient_matches_closed_form():
    model = QuadraticEnergy(4.0)
    objective = MaximumLikelihood(n_steps=5, step_size=0.05, noise_std=None, clamp=None, buffer_size=256, reinit_prob=0.0)
    x = torch.randn(256, 1)
    out = objective(model, x)
    out["loss"].backward()
    negatives = objective.buffer.chains  # all 256 slots were drawn and written back
    # d/da [mean(a x+²/2) - mean(a x-²/2)] = (mean x+² - mean x-²) / 2
    expected = 0.5 * (x.pow(2).mean() - negatives.pow(2).mean())
    torch.testing.assert_close(model.precision.grad, expected)
    torch.testing.assert_close(out["energy_pos"], (0.5 * 4.0 * x.pow(2)).mean())


def test_ml_positive_phase_lowers_data_energy():
    # Model N(0, 1/4) is narrower than the data N(0, 1): the samples have lower x², so the
    # gradient step must lower a, which lowers the energy of the data.
    model = QuadraticEnergy(4.0)
    objective = MaximumLikelihood(n_steps=50, step_size=0.02, noise_std=None, clamp=None, buffer_size=512)
    x = torch.randn(512, 1)
    data_energy_before = model.free_energy(x).mean().item()
    objective(model, x)["loss"].backward()
    assert model.precision.grad.item() > 0
    with torch.no_grad():
        model.precision -= 0.1 * model.precision.grad
    assert model.free_energy(x).mean().item() < data_energy_before


def test_ml_training_recovers_gaussian_precision():
    torch.manual_seed(0)
    data = torch.randn(2048, 1) * 0.5  # maximum likelihood precision 1 / 0.25 = 4
    model = QuadraticEnergy(1.0)
    objective = MaximumLikelihood(n_steps=20, step_size=0.01, noise_std=None, clamp=None, buffer_size=512, reinit_prob=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for step in range(300):
        batch = data[torch.randint(0, len(data), (256,))]
        optimizer.zero_grad()
        objective(model, batch)["loss"].backward()
        optimizer.step()
    reference = 1.0 / data.pow(2).mean().item()  # closed-form MLE of a zero-mean Gaussian's precision
    assert abs(model.precision.item() - reference) / reference < 0.15


def test_ml_logs_phases_and_implied_temperature():
    objective = MaximumLikelihood(n_steps=2, step_size=1.0, noise_std=0.01, buffer_size=64)
    out = objective(_toy_classifier(), torch.rand(16, 4) * 2 - 1)
    assert set(out) == {"loss", "energy_pos", "energy_neg", "sampler_implied_temperature"}
    assert out["sampler_implied_temperature"].item() == pytest.approx(0.01**2 / 2)


def test_exact_mode_uses_model_temperature():
    objective = MaximumLikelihood(n_steps=1, step_size=0.1, noise_std=None, buffer_size=32)
    config = objective.langevin_config(_toy_classifier(temperature=2.0))
    assert config.mode == "exact"
    assert config.implied_temperature == 2.0
    assert config.noise_scale == pytest.approx(math.sqrt(2 * 0.1 * 2.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_std": 0.01, "sampler_temperature": 1.0}, "either noise_std"),
        ({"wall_weight": 1.0}, "wall_radius"),
        ({"init": "uniformm"}, "unknown init"),
        ({"buffer_size": 8, "n_negatives": 16}, "must not exceed buffer_size"),
        ({"energy_l2": -1.0}, "energy_l2"),
        ({"batchnorm": "eval"}, "batchnorm"),
    ],
)
def test_ml_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_objective("ml", **options)


# ---- JEM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_jem_loss_equals_hand_computation(temperature):
    model = _toy_classifier(temperature)
    objective = JointEnergyObjective(px_weight=0.7, energy_l2=0.1, n_steps=3, buffer_size=8, reinit_prob=0.0)
    x = torch.rand(8, 4) * 2 - 1
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = objective(model, (x, y))
    negatives = objective.buffer.chains  # buffer_size equals the batch, so these are this step's negatives
    with torch.no_grad():
        logits, logits_neg = model.net(x), model.net(negatives)
        ce = F.cross_entropy(logits / temperature, y)
        free_pos = -temperature * torch.logsumexp(logits / temperature, dim=1)
        free_neg = -temperature * torch.logsumexp(logits_neg / temperature, dim=1)
        px = (free_pos.mean() - free_neg.mean()) / temperature
        expected = ce + 0.7 * px + 0.1 * (free_pos.pow(2).mean() + free_neg.pow(2).mean())
    torch.testing.assert_close(out["loss"].detach(), expected)
    torch.testing.assert_close(out["ce"], ce)
    torch.testing.assert_close(out["px"], px)
    torch.testing.assert_close(out["energy_neg"], free_neg.mean())


def test_jem_grad_ratio_matches_manual_norms():
    model = _toy_classifier()
    objective = JointEnergyObjective(px_weight=0.5, n_steps=2, buffer_size=8, reinit_prob=0.0, grad_ratio_every=3)
    x = torch.rand(8, 4) * 2 - 1
    y = torch.arange(8) % 3
    out = objective(model, (x, y))
    negatives = objective.buffer.chains.clone()
    ce = F.cross_entropy(model.net(x), y)
    px = -torch.logsumexp(model.net(x), 1).mean() + torch.logsumexp(model.net(negatives), 1).mean()
    norm = lambda value: torch.cat([g.flatten() for g in torch.autograd.grad(value, list(model.parameters()))]).norm()
    expected = norm(0.5 * px) / norm(ce)
    assert out["grad_ratio_px_ce"].item() == pytest.approx(expected.item(), rel=1e-4)
    # Steps between measurements log the last value again, so the CSV column never goes empty.
    repeated = objective(model, (x, y))["grad_ratio_px_ce"]
    assert repeated.item() == out["grad_ratio_px_ce"].item()


def test_jem_rejects_unlabelled_batches():
    with pytest.raises(ValueError, match="labelled batches"):
        JointEnergyObjective(buffer_size=8)(_toy_classifier(), torch.zeros(4, 4))


def _batchnorm_stats(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items() if "running" in name or "num_batches" in name}


@pytest.mark.parametrize("policy", ["frozen", "train"])
def test_jem_step_keeps_batchnorm_stats_across_sampler(policy):
    torch.manual_seed(0)
    model = ClassifierEnergy(build_network("digits-cnn", width=4, batch_norm=True)).train()
    objective = JointEnergyObjective(n_steps=3, buffer_size=32, batchnorm=policy)
    snapshots = []
    sample = objective.sample_negatives

    def recording_sample(*args, **kwargs):
        before = _batchnorm_stats(model)
        result = sample(*args, **kwargs)
        snapshots.append((before, _batchnorm_stats(model)))
        return result

    objective.sample_negatives = recording_sample
    x, y = torch.rand(16, 1, 8, 8) * 2 - 1, torch.arange(16) % 10
    reference = ClassifierEnergy(build_network("digits-cnn", width=4, batch_norm=True)).train()
    reference.load_state_dict(model.state_dict())
    objective(model, (x, y))
    before, after = snapshots[0]
    for name in before:
        assert torch.equal(before[name], after[name]), name
    # Over the whole step the statistics move exactly as one train-mode forward pass on the data.
    with torch.no_grad():
        reference.energy_matrix(x)
    expected = _batchnorm_stats(reference)
    for name, value in _batchnorm_stats(model).items():
        assert torch.equal(value, expected[name]), name


def test_conditional_sampling_uses_labelled_buffer():
    model = _toy_classifier()
    objective = JointEnergyObjective(conditional_sampling=True, n_steps=2, buffer_size=30)
    out = objective(model, (torch.rand(6, 4) * 2 - 1, torch.arange(6) % 3))
    assert objective.buffer.labels is not None
    assert objective.buffer.num_classes == 3
    assert math.isfinite(out["loss"].item())


def test_coercive_wall_bounds_runaway_chains():
    # F decreases without bound along w; with a wall steeper than |w| the chains stop near the radius.
    w = torch.tensor([[3.0, 4.0]])  # |w| = 5
    model = ClassifierEnergy(nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model.net.weight.copy_(w)
    x0 = torch.zeros(16, 2)
    no_wall = MaximumLikelihood(n_steps=200, step_size=0.1, noise_std=0.01, clamp=None, sampler_max_abs=50.0)
    with pytest.raises(SamplerDivergenceError, match="diverged at step"):
        LangevinSampler(no_wall.langevin_config(model))(no_wall.sampling_energy(model), x0, model=model)
    walled = MaximumLikelihood(n_steps=200, step_size=0.1, noise_std=0.01, clamp=None, sampler_max_abs=50.0,
                               wall_weight=10.0, wall_radius=2.0)
    samples = LangevinSampler(walled.langevin_config(model))(walled.sampling_energy(model), x0, model=model).samples
    norms = samples.norm(dim=1)
    # Outside the radius the net drift is (10 - 5) * 0.1 = 0.5 per step back towards the ball.
    assert norms.max().item() < 2.0 + 0.5 + 0.1
    assert norms.min().item() > 1.0


def test_coercive_wall_values():
    x = torch.tensor([[0.0, 0.0], [6.0, 8.0]])
    torch.testing.assert_close(coercive_wall(x, radius=4.0, weight=2.0), torch.tensor([0.0, 12.0]))


# ---- checkpoints of the buffer --------------------------------------------------------------


def _tiny_jem_run(out, epochs, resume=False, prepare=True):
    torch.manual_seed(0)
    train = build_dataset("digits", split="train")
    model = ClassifierEnergy(build_network("digits-cnn", width=4))
    objective = JointEnergyObjective(n_steps=2, buffer_size=64, grad_ratio_every=2)
    if prepare:
        objective.prepare(train)
    # A constant lr, so that a 1-epoch run plus a resume trains with the same lr as one 2-epoch run.
    config = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, schedule="constant", seed=1, progress=False, device="cpu", log_every=1)
    trainer = Trainer(model, objective, Subset(train, range(96)), config, out)
    trainer.fit(resume=resume)
    return trainer


def test_resumed_run_continues_with_same_buffer(tmp_path):
    full = _tiny_jem_run(tmp_path / "full", epochs=2)
    _tiny_jem_run(tmp_path / "split", epochs=1)
    saved = load_checkpoint(tmp_path / "split")["objective"]["buffer.chains"]
    resumed = _tiny_jem_run(tmp_path / "split", epochs=2, resume=True, prepare=False)
    assert not torch.equal(saved, resumed.objective.buffer.chains)  # the resumed run moved the chains on
    assert torch.equal(full.objective.buffer.chains, resumed.objective.buffer.chains)
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_buffer_is_in_checkpoint(tmp_path):
    trainer = _tiny_jem_run(tmp_path, epochs=1)
    state = load_checkpoint(tmp_path)["objective"]
    assert torch.equal(state["buffer.chains"], trainer.objective.buffer.chains.cpu())
    assert state["buffer._extra_state"] == {"filled": True}


def test_class_gaussian_init_fitted_by_prepare():
    train = build_dataset("digits", split="train")
    objective = JointEnergyObjective(init="class-gaussian", init_options={"covariance": "diagonal"}, buffer_size=100)
    objective.prepare(train)
    x, y = train.tensors
    torch.testing.assert_close(objective.init.means[3], x[y == 3].flatten(1).mean(0))
    assert objective.buffer.labels is not None


# ---- the grad_norm OOD score ----------------------------------------------------------------


def test_grad_norm_score_is_registered_higher_is_ood():
    score = get_score("grad_norm")
    assert score.needs_input
    assert score.higher_is_ood


def test_grad_norm_matches_linear_closed_form():
    # For one class, F(x) = -(w.x + b), so ||∇F|| = ||w|| at every input.
    model = ClassifierEnergy(nn.Linear(3, 1))
    values = compute_scores(model, torch.randn(5, 3), ["grad_norm"])["grad_norm"]
    torch.testing.assert_close(values, model.net.weight.norm().expand(5))


def test_grad_norm_leaves_model_and_input_unchanged():
    torch.manual_seed(0)
    model = ClassifierEnergy(build_network("digits-cnn", width=4, batch_norm=True, dropout=0.5)).train()
    x = torch.rand(8, 1, 8, 8)
    x_copy = x.clone()
    stats = _batchnorm_stats(model)
    first = input_gradient_norm(model, x)
    second = input_gradient_norm(model, x)
    torch.testing.assert_close(first, second)  # eval mode: dropout off, running statistics used
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, x_copy)
    for name, value in _batchnorm_stats(model).items():
        assert torch.equal(value, stats[name]), name


def test_grad_norm_orientation_on_digits_vs_noise(jem_run):
    metrics = json.loads((jem_run / "metrics.json").read_text())
    assert metrics["score_orientation"]["grad_norm"] == "higher_is_ood"
    assert metrics["ood"]["uniform-noise"]["grad_norm"]["auroc"] > 0.5


# ---- the jem task ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jem_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("jem-run")
    recipe = load_recipe("digits-jem", overrides=[
        "train.epochs=10", "train.max_steps=200", "train.batch_size=32", "train.progress=false",
        "objective.options.n_steps=5", "objective.options.buffer_size=200", "objective.options.grad_ratio_every=20",
        "train.device=cpu",
    ])
    run_recipe(recipe, out)
    return out


def test_short_jem_run_learns_and_writes_grids(jem_run):
    metrics = json.loads((jem_run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6  # chance is 0.1
    for name in ("samples-conditional.png", "samples-marginal.png", "comparison.md", "comparison.json"):
        assert (jem_run / name).stat().st_size > 0, name
    comparison = json.loads((jem_run / "comparison.json").read_text())
    accuracy_row = comparison["rows"][0]
    assert accuracy_row["metric"] == "accuracy"
    assert accuracy_row["jem"] == metrics["accuracy"]
    baseline = json.loads((jem_run / "baseline-classifier" / "metrics.json").read_text())
    assert accuracy_row["classifier"] == baseline["accuracy"]


def test_jem_run_logs_every_key(jem_run):
    header = (jem_run / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("loss", "energy_pos", "energy_neg", "ce", "px", "sampler_implied_temperature", "grad_ratio_px_ce"):
        assert f"train/{key}" in header, key


def test_sample_command_writes_grid(jem_run, tmp_path):
    png = tmp_path / "grid.png"
    code = main(["sample", str(jem_run), "--out", str(png), "--per-class", "2", "--steps", "5", "--device", "cpu"])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_from_classifier_checkpoint(tmp_path):
    # A plain classifier has no sampler settings; sampling falls back to the defaults.
    train = build_dataset("digits", split="train")
    recipe = load_recipe("digits-classifier", overrides=["train.max_steps=3", "train.progress=false", "train.device=cpu"])
    model = build_classifier(recipe, 10, 1)
    trainer = Trainer(model, build_objective("conditional"), train, recipe.train, tmp_path, extra_state={"recipe": recipe.to_dict()})
    trainer.fit()
    png = tmp_path / "grid.png"
    assert main(["sample", str(tmp_path), "--out", str(png), "--per-class", "1", "--steps", "2", "--marginal"]) == 0
    assert png.is_file()


def test_cifar10_jem_recipe_builds():
    recipe = load_recipe("cifar10-jem")
    assert recipe.task == "jem"
    assert recipe.data.noise_std == 0.03
    model = build_classifier(recipe, num_classes=10, in_channels=3)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert norms == []
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert max(c.out_channels for c in convs) == 640  # WRN-28-10: 64 * 10 channels in the last stage
    assert len([c for c in convs if c.kernel_size == (3, 3)]) == 25  # stem + 12 blocks x 2
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    assert isinstance(objective, JointEnergyObjective)
    config = objective.sampler_config
    assert (config.n_steps, config.step_size, config.noise_std, config.clamp) == (20, 1.0, 0.01, None)
    assert (objective.buffer_size, objective.reinit_prob, objective.init_name) == (10_000, 0.05, "uniform")
    assert (recipe.train.optimizer, recipe.train.lr, recipe.train.batch_size) == ("adam", 1e-4, 64)


def test_jem_task_rejects_non_mcmc_objective(tmp_path):
    recipe = load_recipe("digits-jem", overrides=["objective.name=conditional", "objective.options={}"])
    with pytest.raises(ValueError, match="MCMC negatives"):
        run_recipe(recipe, tmp_path)


def test_jem_task_rejects_outliers(tmp_path):
    recipe = load_recipe("digits-jem", overrides=["data.outliers=uniform-noise"])
    with pytest.raises(ValueError, match="does not use auxiliary outliers"):
        run_recipe(recipe, tmp_path)


def test_plain_dataset_without_metadata_builds_buffer_lazily():
    data = TensorDataset(torch.rand(40, 4) * 2 - 1, torch.arange(40) % 3)
    model = _toy_classifier()
    objective = JointEnergyObjective(n_steps=1, buffer_size=20)
    config = TrainConfig(epochs=1, batch_size=10, progress=False, device="cpu")
    Trainer(model, objective, data, config).fit()
    assert objective.buffer.chains.shape == (20, 4)
