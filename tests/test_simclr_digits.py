import json

import numpy as np
import pytest
import torch

from energyview.adapters import digits_simclr_encoder, simclr_energy
from energyview.data import build_dataset, dataset_tensors
from energyview.data.augment import DigitsAugment, TwoViewDataset
from energyview.objectives import SimCLRObjective, nt_xent_loss
from energyview.pipeline import run_recipe
from energyview.recipes import RecipeError, load_recipe
from energyview.tasks.contrastive import check_contrastive_recipe, class_prototypes, knn_accuracy
from energyview.training import TrainConfig, Trainer

IDENTITY = dict(max_rotation=0.0, scale=(1.0, 1.0), max_shift=0.0, contrast=(1.0, 1.0), erase_prob=0.0, noise_std=0.0)


# ---------------------------------------------------------------------------------------------
# Augmentations
# ---------------------------------------------------------------------------------------------


def test_identity_settings_return_the_image():
    image = build_dataset("digits", split="test")[0][0]
    torch.testing.assert_close(DigitsAugment(**IDENTITY)(image), image, atol=1e-5, rtol=0)


def test_views_stay_in_range_and_shape():
    torch.manual_seed(0)
    images = dataset_tensors(build_dataset("digits", split="test"), max_samples=32)[0]
    views = DigitsAugment(noise_std=0.5)(images)
    assert views.shape == images.shape
    assert views.min() >= -1.0
    assert views.max() <= 1.0
    assert not torch.allclose(views, images)


def test_blank_image_stays_background():
    torch.manual_seed(0)
    blank = torch.full((4, 1, 8, 8), -1.0)
    torch.testing.assert_close(DigitsAugment(noise_std=0.0)(blank), blank)


@pytest.mark.parametrize("size", [2, 3])
def test_erasing_clears_one_square(size):
    torch.manual_seed(0)
    settings = {**IDENTITY, "erase_prob": 1.0, "erase_size": (size, size)}
    view = DigitsAugment(**settings)(torch.ones(1, 8, 8))
    assert int((view == -1.0).sum()) == size * size


def test_contrast_scales_the_ink():
    torch.manual_seed(0)
    settings = {**IDENTITY, "contrast": (0.5, 0.5)}
    view = DigitsAugment(**settings)(torch.zeros(1, 8, 8))  # ink 1 everywhere
    torch.testing.assert_close(view, torch.full((1, 8, 8), -0.5))


def test_seeded_views_repeat():
    image = build_dataset("digits", split="test")[3][0]
    torch.manual_seed(5)
    first = DigitsAugment()(image)
    torch.manual_seed(5)
    assert torch.equal(DigitsAugment()(image), first)


@pytest.mark.parametrize("settings, message", [
    ({"max_rotation": -1.0}, "max_rotation must be >= 0"),
    ({"scale": (1.2, 0.8)}, "scale must satisfy"),
    ({"erase_prob": 1.5}, r"erase_prob must lie in \[0, 1\]"),
    ({"contrast": (1.0,)}, "contrast must be two finite numbers"),
    ({"low": 1.0, "high": 1.0}, "low must be < high"),
])
def test_invalid_augment_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        DigitsAugment(**settings)


def test_two_view_dataset_layout():
    torch.manual_seed(0)
    base = build_dataset("digits", split="test")
    pairs = TwoViewDataset(base)
    (first, second), label = pairs[7]
    assert first.shape == second.shape == base[7][0].shape
    assert not torch.equal(first, second)
    assert torch.equal(label, base[7][1])
    assert (pairs.num_classes, pairs.input_shape, pairs.data_range) == (10, (1, 8, 8), (-1.0, 1.0))


# ---------------------------------------------------------------------------------------------
# Evaluation helpers against brute force
# ---------------------------------------------------------------------------------------------


def test_knn_accuracy_matches_brute_force_vote():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(60, 5)), rng.normal(size=(25, 5))
    train_labels, test_labels = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
    hits = 0
    for row, label in zip(unit(test), test_labels):
        nearest = np.argsort(-(unit(train) @ row), kind="stable")[:5]
        votes = np.bincount(train_labels[nearest], minlength=3)
        hits += int(votes.argmax() == label)
    assert knn_accuracy(train, train_labels, test, test_labels, neighbors=5) == pytest.approx(hits / 25)


def test_class_prototypes_are_normalised_class_means():
    torch.manual_seed(0)
    model = simclr_energy(digits_simclr_encoder(width=4, projection_hidden=8, projection_dim=6), tau=0.5)
    data = build_dataset("digits", split="test")
    prototypes = class_prototypes(model, data, num_classes=10, batch_size=100)
    x, y = dataset_tensors(data)
    with torch.no_grad():
        z = model.encode_x(x)
    for k in range(10):
        mean = z[y == k].mean(dim=0)
        torch.testing.assert_close(prototypes.embeddings[k], mean / mean.norm(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def held_out_nt_xent(model, images, seed=0):
    torch.manual_seed(seed)
    augment = DigitsAugment()
    with torch.no_grad():
        return nt_xent_loss(model.encode_x(augment(images)), model.encode_x(augment(images)), 0.2)["loss"].item()


def test_short_training_lowers_held_out_loss():
    torch.manual_seed(0)
    model = simclr_energy(digits_simclr_encoder(width=8, projection_hidden=64, projection_dim=32), tau=0.2)
    test_images = dataset_tensors(build_dataset("digits", split="test"), max_samples=256)[0]
    before = held_out_nt_xent(model, test_images)
    config = TrainConfig(epochs=6, batch_size=128, lr=0.005, progress=False, device="cpu", warmup_steps=5)
    Trainer(model, SimCLRObjective(temperature=0.2), TwoViewDataset(build_dataset("digits", split="train")), config).fit()
    after = held_out_nt_xent(model, test_images)
    print(f"held-out NT-Xent (256 test digits, tau 0.2): {before:.3f} -> {after:.3f}")
    assert after < before - 0.25  # an untrained encoder gives no drop


def test_simclr_recipe_short_run(tmp_path):
    overrides = ["train.epochs=5", "model.options.width=8", "train.progress=false", "evaluation.plots=false"]
    metrics = run_recipe(load_recipe("digits-simclr", overrides=overrides), tmp_path)
    print(f"linear probe {metrics['linear_probe_accuracy']:.4f}, kNN {metrics['knn_accuracy']:.4f}, "
          f"prototype {metrics['accuracy']:.4f} after 5 epochs")
    assert metrics["linear_probe_accuracy"] > 0.8
    assert metrics["accuracy"] > 0.3  # nearest class prototype in the contrastive space; chance is 0.1
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("linear_probe_accuracy", "knn_accuracy", "linear_probe_accuracy_at_init", "train_seconds", "ood"):
        assert key in written
    assert {"energy", "msp", "mcm"} <= set(written["ood"]["photo-patches"])
    assert "linear probe accuracy" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "checkpoint-last.pt").exists()


@pytest.mark.parametrize("override, message", [
    ("objective.name=clip", "objective.name of task 'simclr' must be one of 'simclr', 'supcon'"),
    ("model.options.depth=3", "model.options of task 'simclr': unknown option 'depth'"),
    ("model.network=wide-resnet", "model.network of task 'simclr' must be one of"),
])
def test_simclr_recipe_rejects_bad_values(override, message):
    with pytest.raises(RecipeError, match=message):
        check_contrastive_recipe(load_recipe("digits-simclr", overrides=[override]))
