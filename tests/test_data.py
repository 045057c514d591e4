"""Tests of the dataset registry, checked against scikit-learn, PIL and closed forms."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images
from sklearn.model_selection import train_test_split

from energyview.data import (
    DIGITS_SPLIT_SEED,
    DIGITS_TEST_SIZE,
    LabeledTensorDataset,
    build_dataset,
    dataset_tensors,
    list_datasets,
    make_digits,
    make_digits_open_set,
    make_loader,
    register_dataset,
)
from energyview.data import digits as digits_module
from energyview.data import ood_sets, registry

FAR_OOD_NAMES = ("photo-patches", "uniform-noise", "gaussian-noise")


@pytest.fixture(scope="module")
def sklearn_digits():
    return load_digits()


def image_label_counts(images: np.ndarray, labels: np.ndarray) -> Counter:
    """Count each (image bytes, label) pair, so two datasets compare as multisets."""
    return Counter((image.astype(np.float64).tobytes(), int(label)) for image, label in zip(images, labels))


def to_digit_pixels(x: torch.Tensor) -> np.ndarray:
    """Invert the x / 8 - 1 scaling back to load_digits pixel values 0..16, as [N, 8, 8]."""
    return ((x.squeeze(1).double() + 1.0) * 8.0).numpy()


def neighbour_difference(x: torch.Tensor) -> float:
    """Return the mean absolute difference between horizontally and vertically adjacent pixels."""
    horizontal = (x[..., 1:] - x[..., :-1]).abs().mean()
    vertical = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return float((horizontal + vertical) / 2)


# Digits


def test_digits_sizes_and_range():
    train, test = make_digits("train"), make_digits("test")
    assert len(train) + len(test) == 1797
    assert len(test) == 450
    for dataset in (train, test):
        x, y = dataset.tensors
        assert dataset.num_classes == 10
        assert dataset.input_shape == (1, 8, 8)
        assert dataset.data_range == (-1.0, 1.0)
        assert x.dtype == torch.float32
        assert y.dtype == torch.int64
        assert float(x.min()) == -1.0
        assert float(x.max()) == 1.0
        assert set(y.tolist()) == set(range(10))


def test_digits_match_sklearn_images_and_labels(sklearn_digits):
    x_train, y_train = make_digits("train").tensors
    x_test, y_test = make_digits("test").tensors
    ours = image_label_counts(to_digit_pixels(torch.cat([x_train, x_test])), torch.cat([y_train, y_test]).numpy())
    reference = image_label_counts(sklearn_digits.images, sklearn_digits.target)
    assert ours == reference


def test_digits_source_indices_point_at_sklearn_rows(sklearn_digits):
    for split in ("train", "test"):
        dataset = make_digits(split)
        indices = dataset.source_indices.numpy()
        x, y = dataset.tensors
        np.testing.assert_array_equal(to_digit_pixels(x), sklearn_digits.images[indices])
        np.testing.assert_array_equal(y.numpy(), sklearn_digits.target[indices])


def test_digits_train_test_disjoint():
    train = set(make_digits("train").source_indices.tolist())
    test = set(make_digits("test").source_indices.tolist())
    assert not train & test
    assert train | test == set(range(1797))


def test_digits_split_is_stratified(sklearn_digits):
    class_sizes = np.bincount(sklearn_digits.target, minlength=10)
    test_counts = np.bincount(make_digits("test").tensors[1].numpy(), minlength=10)
    train_counts = np.bincount(make_digits("train").tensors[1].numpy(), minlength=10)
    for digit in range(10):
        assert abs(test_counts[digit] - DIGITS_TEST_SIZE * class_sizes[digit]) <= 1, digit
        assert abs(train_counts[digit] - (1 - DIGITS_TEST_SIZE) * class_sizes[digit]) <= 1, digit


def test_digits_split_follows_documented_protocol(sklearn_digits):
    _, test_indices = train_test_split(
        np.arange(1797), test_size=0.25, stratify=sklearn_digits.target, random_state=DIGITS_SPLIT_SEED
    )
    assert sorted(test_indices.tolist()) == make_digits("test").source_indices.tolist()


def test_digits_split_ignores_global_seeds():
    digits_module._load_digits_split.cache_clear()
    torch.manual_seed(1)
    np.random.seed(1)
    first = make_digits("test").source_indices
    digits_module._load_digits_split.cache_clear()
    torch.manual_seed(2)
    np.random.seed(2)
    second = make_digits("test").source_indices
    assert torch.equal(first, second)


def test_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match="has no split 'ood'"):
        make_digits("ood")


# Open-set split


def test_open_set_in_distribution_labels(sklearn_digits):
    for split in ("train", "test"):
        dataset = make_digits_open_set(split)
        x, y = dataset.tensors
        assert dataset.num_classes == 5
        assert dataset.classes == ("0", "1", "2", "3", "4")
        assert set(y.tolist()) == {0, 1, 2, 3, 4}
        # With the default known classes, digit d keeps label d.
        np.testing.assert_array_equal(y.numpy(), sklearn_digits.target[dataset.source_indices.numpy()])
        base_labels = make_digits(split).tensors[1]
        assert len(dataset) == int((base_labels < 5).sum())


def test_open_set_ood_digits_five_to_nine(sklearn_digits):
    ood = make_digits_open_set("ood")
    x, y = ood.tensors
    assert ood.num_classes is None
    assert set(y.tolist()) == {-1}
    test_labels = make_digits("test").tensors[1]
    assert len(ood) == int((test_labels >= 5).sum())
    # Look each image up in load_digits by its pixels: every row it matches is a digit 5-9.
    rows_by_pixels: dict[bytes, set[int]] = {}
    for image, label in zip(sklearn_digits.images, sklearn_digits.target):
        rows_by_pixels.setdefault(image.astype(np.float64).tobytes(), set()).add(int(label))
    found_digits = set()
    for image in to_digit_pixels(x):
        labels = rows_by_pixels[image.tobytes()]
        assert labels <= {5, 6, 7, 8, 9}
        found_digits |= labels
    assert found_digits == {5, 6, 7, 8, 9}


def test_open_set_ood_comes_from_test_split():
    ood_indices = set(make_digits_open_set("ood").source_indices.tolist())
    assert ood_indices <= set(make_digits("test").source_indices.tolist())
    assert not ood_indices & set(make_digits_open_set("train").source_indices.tolist())


def test_open_set_custom_known_classes(sklearn_digits):
    dataset = make_digits_open_set("train", known_classes=[7, 2])
    digits_of_samples = sklearn_digits.target[dataset.source_indices.numpy()]
    y = dataset.tensors[1].numpy()
    assert dataset.num_classes == 2
    assert dataset.classes == ("2", "7")
    np.testing.assert_array_equal(y[digits_of_samples == 2], 0)
    np.testing.assert_array_equal(y[digits_of_samples == 7], 1)
    assert set(digits_of_samples.tolist()) == {2, 7}
    ood_digits = sklearn_digits.target[make_digits_open_set("ood", known_classes=[7, 2]).source_indices.numpy()]
    assert not {2, 7} & set(ood_digits.tolist())


@pytest.mark.parametrize(
    ("known_classes", "error"),
    [
        ([], ValueError),
        (list(range(10)), ValueError),
        ([1, 1], ValueError),
        ([3, 10], ValueError),
        ([1.5], TypeError),
        ([True], TypeError),
        ("0123", TypeError),
    ],
)
def test_open_set_rejects_bad_known_classes(known_classes, error):
    with pytest.raises(error, match="known_classes"):
        make_digits_open_set("train", known_classes=known_classes)


# Far-OOD sets


@pytest.mark.parametrize("name", FAR_OOD_NAMES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_far_ood_shape_range_labels(name, shape):
    dataset = build_dataset(name, split="test", num_samples=20, seed=3, shape=shape)
    x, y = dataset.tensors
    assert tuple(x.shape) == (20, *shape)
    assert dataset.input_shape == shape
    assert dataset.num_classes is None
    assert dataset.data_range == (-1.0, 1.0)
    assert x.dtype == torch.float32
    assert bool(torch.isfinite(x).all())
    assert float(x.min()) >= -1.0
    assert float(x.max()) <= 1.0
    assert set(y.tolist()) == {-1}


@pytest.mark.parametrize("name", FAR_OOD_NAMES)
def test_far_ood_deterministic_per_seed(name):
    first = build_dataset(name, split="test", num_samples=50, seed=7).tensors[0]
    again = build_dataset(name, split="test", num_samples=50, seed=7).tensors[0]
    other_seed = build_dataset(name, split="test", num_samples=50, seed=8).tensors[0]
    train = build_dataset(name, split="train", num_samples=50, seed=7).tensors[0]
    alias = build_dataset(name, split="ood", num_samples=50, seed=7).tensors[0]
    assert torch.equal(first, again)
    assert torch.equal(first, alias)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(first, train)


@pytest.mark.parametrize("name", FAR_OOD_NAMES)
def test_far_ood_default_size(name):
    assert len(build_dataset(name)) == 500


def test_uniform_noise_moments_match_closed_form():
    x = build_dataset("uniform-noise", num_samples=500, seed=0).tensors[0]
    # U(-1, 1): mean 0, standard deviation 1/sqrt(3), E|X - Y| = 2/3 for independent X, Y.
    assert abs(float(x.mean())) < 0.02
    assert abs(float(x.std()) - 1 / math.sqrt(3)) < 0.01
    assert abs(neighbour_difference(x) - 2 / 3) < 0.01


def test_gaussian_noise_clamped_fraction():
    x = build_dataset("gaussian-noise", num_samples=500, seed=0).tensors[0]
    clamped = float((x.abs() == 1.0).float().mean())
    # P(|Z| > 2) for Z ~ N(0, 1) is erfc(2 / sqrt(2)) = 0.0455; 32,000 pixels give a 0.0012 standard error.
    assert abs(clamped - math.erfc(2 / math.sqrt(2))) < 0.006
    inner = x[x.abs() < 1.0]
    assert abs(float(inner.mean())) < 0.02


def test_photo_patches_are_smooth_real_images():
    photos = build_dataset("photo-patches", split="test").tensors[0]
    noise = build_dataset("uniform-noise").tensors[0]
    per_patch_std = photos.flatten(1).std(dim=1)
    assert bool((per_patch_std > 0.05).all())
    assert bool((photos.flatten(1).amin(dim=1) == -1.0).all())
    assert bool((photos.flatten(1).amax(dim=1) == 1.0).all())
    assert neighbour_difference(photos) < 0.5 * neighbour_difference(noise)
    assert len(torch.unique(photos.flatten(1), dim=0)) == len(photos)


def test_photo_patches_match_independent_reconstruction():
    dataset = build_dataset("photo-patches", split="test", num_samples=12, seed=5)
    by_name = dict(zip((p.rsplit("/", 1)[-1] for p in load_sample_images().filenames), load_sample_images().images))
    photos = [by_name["china.jpg"], by_name["flower.jpg"]]
    for patch, (photo_index, top, left) in zip(dataset.tensors[0], dataset.patch_positions.tolist()):
        rgb = torch.from_numpy(np.array(photos[photo_index][top : top + 32, left : left + 32], dtype=np.float64))
        gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])[None, None]
        small = F.avg_pool2d(gray, kernel_size=4)[0]
        expected = 2 * (small - small.min()) / (small.max() - small.min()) - 1
        torch.testing.assert_close(patch.double(), expected, atol=1e-6, rtol=0)


def test_photo_patches_splits_use_separate_halves():
    train = build_dataset("photo-patches", split="train", num_samples=200, seed=0).patch_positions
    test = build_dataset("photo-patches", split="test", num_samples=200, seed=0).patch_positions
    assert int(train[:, 2].max()) + 32 <= 320
    assert int(test[:, 2].min()) >= 320
    assert int(test[:, 2].max()) + 32 <= 640
    assert set(train[:, 0].tolist()) == {0, 1}
    assert len(torch.unique(train, dim=0)) == 200


def test_photo_patches_rejects_more_samples_than_positions():
    # 8x8 patches at scale 52 are 416x416 pixels, wider than a 320-pixel half.
    with pytest.raises(ValueError, match="does not fit"):
        build_dataset("photo-patches", scale=52)
    # At scale 40 (320x320 pixels) each half has 108 rows x 1 column of positions, 216 in all.
    assert len(build_dataset("photo-patches", num_samples=216, scale=40)) == 216
    with pytest.raises(ValueError, match="exceeds the 216 distinct patch positions"):
        build_dataset("photo-patches", num_samples=217, scale=40)


def test_min_max_scale_constant_patch_gives_zeros():
    images = np.stack([np.full((1, 8, 8), 0.3), np.arange(64, dtype=np.float64).reshape(1, 8, 8)])
    scaled = ood_sets._min_max_scale(images)
    assert not np.isnan(scaled).any()
    np.testing.assert_array_equal(scaled[0], 0.0)
    assert scaled[1].min() == -1.0
    assert scaled[1].max() == 1.0


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("uniform-noise", {"num_samples": 0}, "num_samples"),
        ("uniform-noise", {"num_samples": 2.5}, "num_samples"),
        ("gaussian-noise", {"seed": -1}, "seed"),
        ("gaussian-noise", {"std": 0.0}, "std"),
        ("uniform-noise", {"shape": (8, 8)}, "shape"),
        ("uniform-noise", {"shape": (1, 0, 8)}, "shape"),
        ("photo-patches", {"shape": (2, 8, 8)}, "channels"),
        ("photo-patches", {"shape": (1, 8, 8), "scale": 50}, "does not fit"),
        ("photo-patches", {"split": "validation"}, "has no split"),
    ],
)
def test_far_ood_rejects_bad_arguments(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_dataset(name, **kwargs)


# Registry


def test_registry_lists_builtin_names():
    expected = {
        "digits", "digits-open-set", "photo-patches", "uniform-noise", "gaussian-noise",
        "cifar10", "cifar100", "svhn", "mnist", "image-folder",
    }  # fmt: skip
    assert expected <= set(list_datasets())
    assert list_datasets() == sorted(list_datasets())


def test_registry_unknown_name_suggests_close_match():
    with pytest.raises(ValueError, match="unknown dataset 'digit'") as caught:
        build_dataset("digit")
    message = str(caught.value)
    assert "Did you mean 'digits'" in message
    assert "uniform-noise" in message


def test_registry_duplicate_and_overwrite(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    register_dataset("tiny", lambda split: LabeledTensorDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2).long(), 1))
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("tiny", make_digits)
    register_dataset("tiny", make_digits, overwrite=True)
    assert len(build_dataset("tiny", split="test")) == 450
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("digits", make_digits)


def test_registry_rejects_bad_registrations(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    with pytest.raises(TypeError, match="callable"):
        register_dataset("broken", "not a function")
    with pytest.raises(ValueError, match="empty"):
        register_dataset("  ", make_digits)
    register_dataset("bare", lambda split: torch.utils.data.TensorDataset(torch.zeros(1, 1, 2, 2)))
    with pytest.raises(TypeError, match="without num_classes, input_shape, data_range"):
        build_dataset("bare")


@pytest.mark.parametrize(
    ("name", "split"),
    [("digits", "train"), ("digits", "test"), ("digits-open-set", "train"), ("digits-open-set", "ood")]
    + [(name, "test") for name in FAR_OOD_NAMES],
)
def test_registry_items_follow_contract(name, split):
    dataset = build_dataset(name, split=split)
    for index in (0, len(dataset) - 1):
        x, y = dataset[index]
        assert x.dtype == torch.float32
        assert tuple(x.shape) == dataset.input_shape
        assert y.dtype == torch.int64
        assert y.dim() == 0
        low, high = dataset.data_range
        assert low <= float(x.min()) <= float(x.max()) <= high
        if dataset.num_classes is None:
            assert int(y) == -1
        else:
            assert 0 <= int(y) < dataset.num_classes


def test_labeled_dataset_rejects_bad_tensors():
    with pytest.raises(TypeError, match="float32"):
        LabeledTensorDataset(torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2).long(), 1)
    with pytest.raises(TypeError, match=r"\[N, C, H, W\]"):
        LabeledTensorDataset(torch.zeros(2, 4), torch.zeros(2).long(), 1)
    with pytest.raises(TypeError, match="int64"):
        LabeledTensorDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2), 1)
    with pytest.raises(ValueError, match="2 images and 3 labels"):
        LabeledTensorDataset(torch.zeros(2, 1, 2, 2), torch.zeros(3).long(), 1)


# Loader helpers


def loader_order(loader) -> list[int]:
    return [int(value) for _, y in loader for value in (y if y.dim() else [y])]


def test_make_loader_reproducible_order():
    dataset = LabeledTensorDataset(torch.zeros(30, 1, 2, 2), torch.arange(30), num_classes=30)
    first = make_loader(dataset, batch_size=8, shuffle=True, seed=11)
    again = make_loader(dataset, batch_size=8, shuffle=True, seed=11)
    other = make_loader(dataset, batch_size=8, shuffle=True, seed=12)
    epoch_one, epoch_two = loader_order(first), loader_order(first)
    assert epoch_one == loader_order(again)
    assert epoch_two == loader_order(again)
    assert epoch_one != loader_order(other)
    assert epoch_one != epoch_two
    assert sorted(epoch_one) == list(range(30))
    assert loader_order(make_loader(dataset, 8, shuffle=False, seed=0)) == list(range(30))


def test_make_loader_drop_last_and_batches():
    dataset = LabeledTensorDataset(torch.zeros(30, 1, 2, 2), torch.arange(30), num_classes=30)
    sizes = [len(y) for _, y in make_loader(dataset, batch_size=8, shuffle=True, seed=0)]
    kept_sizes = [len(y) for _, y in make_loader(dataset, batch_size=8, shuffle=True, seed=0, drop_last=True)]
    assert sizes == [8, 8, 8, 6]
    assert kept_sizes == [8, 8, 8]


def test_make_loader_worker_matches_main_process():
    dataset = make_digits("test")
    in_process = loader_order(make_loader(dataset, batch_size=100, shuffle=True, seed=4))
    with_worker = loader_order(make_loader(dataset, batch_size=100, shuffle=True, seed=4, num_workers=1))
    assert in_process == with_worker


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"batch_size": 0}, ValueError),
        ({"batch_size": 2.5}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": None}, TypeError),
        ({"num_workers": -1}, ValueError),
    ],
)
def test_make_loader_rejects_bad_arguments(kwargs, error):
    arguments = {"batch_size": 4, "shuffle": True, "seed": 0, **kwargs}
    with pytest.raises(error):
        make_loader(make_digits("test"), **arguments)


def test_dataset_tensors_returns_copies():
    dataset = make_digits("test")
    x, y = dataset_tensors(dataset)
    assert torch.equal(x, dataset.tensors[0])
    assert torch.equal(y, dataset.tensors[1])
    x.zero_()
    y.zero_()
    assert float(dataset.tensors[0].max()) == 1.0
    assert set(dataset.tensors[1].tolist()) == set(range(10))


def test_dataset_tensors_stacks_generic_dataset():
    dataset = make_digits("test")
    subset = torch.utils.data.Subset(dataset, [5, 0, 9])
    x, y = dataset_tensors(subset)
    assert torch.equal(x, dataset.tensors[0][[5, 0, 9]])
    assert torch.equal(y, dataset.tensors[1][[5, 0, 9]])
    x, y = dataset_tensors(subset, max_samples=2)
    assert tuple(x.shape) == (2, 1, 8, 8)
    assert torch.equal(y, dataset.tensors[1][[5, 0]])


def test_dataset_tensors_rejects_bad_input():
    empty = torch.utils.data.Subset(make_digits("test"), [])
    with pytest.raises(ValueError, match="empty"):
        dataset_tensors(empty)
    with pytest.raises(TypeError, match="pair"):
        dataset_tensors([torch.zeros(1, 2, 2)])


# Torchvision sets and image folders


COLORS = {"cat": (255, 0, 128), "dog": (10, 200, 30)}


def write_image_folder(root, sizes=((12, 10), (9, 16), (8, 8))):
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for index, size in enumerate(sizes):
            Image.new("RGB", size, color).save(root / name / f"{index}.png")


def test_image_folder_rgb(tmp_path):
    write_image_folder(tmp_path / "train")
    dataset = build_dataset("image-folder", split="train", root=tmp_path, image_size=8)
    assert len(dataset) == 6
    assert dataset.num_classes == 2
    assert dataset.classes == ("cat", "dog")
    assert dataset.input_shape == (3, 8, 8)
    assert dataset.data_range == (-1.0, 1.0)
    for index in range(len(dataset)):
        x, y = dataset[index]
        assert x.dtype == torch.float32
        assert tuple(x.shape) == (3, 8, 8)
        assert y.dtype == torch.int64
        color = COLORS[dataset.classes[int(y)]]
        expected = (2 * torch.tensor(color, dtype=torch.float32) / 255 - 1).view(3, 1, 1).expand(3, 8, 8)
        torch.testing.assert_close(x, expected, atol=1e-6, rtol=0)
    assert sorted(int(dataset[i][1]) for i in range(6)) == [0, 0, 0, 1, 1, 1]


def test_image_folder_grayscale_flat_root_and_ood(tmp_path):
    write_image_folder(tmp_path)
    dataset = build_dataset("image-folder", root=tmp_path, image_size=(4, 6), channels=1, ood=True)
    x, y = dataset[0]
    assert tuple(x.shape) == (1, 4, 6)
    assert dataset.input_shape == (1, 4, 6)
    assert dataset.num_classes is None
    assert int(y) == -1
    gray = Image.new("RGB", (1, 1), COLORS["cat"]).convert("L").getpixel((0, 0))
    torch.testing.assert_close(x, torch.full((1, 4, 6), 2 * gray / 255 - 1), atol=1e-6, rtol=0)


def test_image_folder_custom_transform(tmp_path):
    write_image_folder(tmp_path / "test")
    from torchvision import transforms

    custom = transforms.Compose([transforms.Resize((5, 5)), transforms.ToTensor()])
    dataset = build_dataset("image-folder", split="test", root=tmp_path, transform=custom)
    assert dataset.input_shape == (3, 5, 5)
    assert dataset.data_range is None
    assert float(dataset[0][0].min()) >= 0.0


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        build_dataset("image-folder", root=tmp_path / "missing", image_size=8)
    with pytest.raises(FileNotFoundError, match="root/<class>/<image>"):
        build_dataset("image-folder", root=tmp_path, image_size=8)
    write_image_folder(tmp_path / "train")
    with pytest.raises(ValueError, match="no 'test'"):
        build_dataset("image-folder", split="test", root=tmp_path, image_size=8)
    with pytest.raises(ValueError, match="image_size"):
        build_dataset("image-folder", root=tmp_path, image_size=0)
    with pytest.raises(ValueError, match="channels"):
        build_dataset("image-folder", root=tmp_path, image_size=8, channels=2)
    with pytest.raises(ValueError, match="needs root"):
        build_dataset("image-folder", image_size=8)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "mnist"])
def test_torchvision_missing_files_error(name, tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        build_dataset(name, split="test", root=tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "download=True" in message
    assert list(tmp_path.iterdir()) == []


def test_torchvision_requires_root():
    with pytest.raises(ValueError, match="needs root"):
        build_dataset("cifar10")
    with pytest.raises(ValueError, match="has no split 'extra'"):
        build_dataset("cifar10", split="extra", root="unused")


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the IDX format of the MNIST files."""
    magic = 0x0800 + array.ndim
    with open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.astype(np.uint8).tobytes())


def test_mnist_from_local_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 0, 3], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    dataset = build_dataset("mnist", split="test", root=tmp_path)
    assert len(dataset) == 3
    assert dataset.input_shape == (1, 28, 28)
    assert dataset.num_classes == 10
    for index in range(3):
        x, y = dataset[index]
        assert tuple(x.shape) == (1, 28, 28)
        assert y.dtype == torch.int64
        assert int(y) == labels[index]
        expected = torch.from_numpy(images[index]).float()[None] * 2 / 255 - 1
        torch.testing.assert_close(x, expected, atol=1e-6, rtol=0)
    ood = build_dataset("mnist", split="train", root=tmp_path, ood=True)
    assert int(ood[0][1]) == -1
    assert ood.num_classes is None


def test_import_does_not_load_torchvision():
    code = "import sys, energyview.data; print('torchvision' in sys.modules, 'sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
