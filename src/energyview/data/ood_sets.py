"""Far-OOD sets: patches of real photographs and two kinds of noise, in the shape of the data.

All three sets default to ``[1, 8, 8]`` images in [-1, 1], the shape and range of ``digits``;
pass ``shape=(3, 32, 32)`` to score them against CIFAR-sized inputs. Every sample has label -1.
A set is a pure function of ``(split, num_samples, seed, shape)`` and the other arguments.
``"train"`` and ``"test"`` draw from different random streams (and, for photo patches,
from different halves of each photograph), so an outlier-exposure run can train on one and
evaluate on the other. ``"ood"`` is the same set as ``"test"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .registry import OOD_LABEL, LabeledTensorDataset, check_split, register_dataset

__all__ = [
    "DEFAULT_OOD_SHAPE",
    "FAR_OOD_SPLITS",
    "GAUSSIAN_NOISE_STD",
    "PHOTO_PATCH_SCALE",
    "make_gaussian_noise",
    "make_photo_patches",
    "make_uniform_noise",
]

#: ``(C, H, W)`` of the far-OOD sets unless ``shape`` is given: the shape of ``digits``.
DEFAULT_OOD_SHAPE = (1, 8, 8)
#: Splits of every far-OOD set; ``"ood"`` is an alias of ``"test"``.
FAR_OOD_SPLITS = ("train", "test", "ood")
#: Standard deviation of ``gaussian-noise`` before clamping to [-1, 1].
GAUSSIAN_NOISE_STD = 0.5
#: Side of the square of photo pixels averaged into one patch pixel (32x32 pixels -> 8x8).
PHOTO_PATCH_SCALE = 4

_SPLIT_STREAMS = {"train": 0, "test": 1, "ood": 1}
# ITU-R BT.601 luma weights, the ones PIL uses for its "L" mode.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def make_uniform_noise(
    split: str = "test", num_samples: int = 500, seed: int = 0, shape: Sequence[int] = DEFAULT_OOD_SHAPE
) -> LabeledTensorDataset:
    """Build ``uniform-noise``: every pixel drawn independently from U(-1, 1).

    Example:
        >>> noise = make_uniform_noise(num_samples=4, seed=1)
        >>> len(noise), noise.input_shape, noise.num_classes, int(noise[0][1])
        (4, (1, 8, 8), None, -1)
    """
    rng, num_samples, shape = _check_arguments("uniform-noise", split, num_samples, seed, shape)
    x = rng.uniform(-1.0, 1.0, size=(num_samples, *shape))
    return _ood_dataset(x)


def make_gaussian_noise(
    split: str = "test",
    num_samples: int = 500,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_OOD_SHAPE,
    std: float = GAUSSIAN_NOISE_STD,
) -> LabeledTensorDataset:
    """Build ``gaussian-noise``: every pixel drawn from N(0, std^2), then clamped to [-1, 1].

    With the default ``std = 0.5`` about 4.6% of the pixels (``|z| > 2`` sigma) sit on -1 or 1.
    """
    rng, num_samples, shape = _check_arguments("gaussian-noise", split, num_samples, seed, shape)
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not math.isfinite(std) or std <= 0:
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    x = np.clip(rng.normal(0.0, float(std), size=(num_samples, *shape)), -1.0, 1.0)
    return _ood_dataset(x)


def make_photo_patches(
    split: str = "test",
    num_samples: int = 500,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_OOD_SHAPE,
    scale: int = PHOTO_PATCH_SCALE,
) -> LabeledTensorDataset:
    """Build ``photo-patches``: coarse patches of scikit-learn's two sample photographs.

    Each patch is a square of ``H*scale x W*scale`` photo pixels (32x32 by default) at a
    seeded random position in ``china.jpg`` or ``flower.jpg`` (427x640 RGB each), drawn
    uniformly without replacement from all positions of the split.
    ``"train"`` patches come from the left half of each photograph (columns 0-319),
    ``"test"`` patches from the right half, so the two splits share no pixel. With ``C == 1``
    a patch is converted to grayscale with the BT.601 luma weights, and with ``C == 3`` it
    stays RGB. It is then averaged over ``scale x scale`` blocks down to ``H x W`` and
    min-max scaled to [-1, 1] on its own. A constant patch becomes all zeros.
    ``patch_positions`` contains ``(photo index, top row, left column)`` of each patch in
    full-resolution pixels.

    Example:
        >>> patches = make_photo_patches(num_samples=3)
        >>> x, y = patches[0]
        >>> tuple(x.shape), float(x.min()), float(x.max()), int(y)
        ((1, 8, 8), -1.0, 1.0, -1)
    """
    rng, num_samples, shape = _check_arguments("photo-patches", split, num_samples, seed, shape)
    channels, height, width = shape
    if channels not in (1, 3):
        raise ValueError(f"photo-patches needs 1 (grayscale) or 3 (RGB) channels, got shape {shape}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an int >= 1, got {scale!r}")
    photos = _load_photos()
    positions = _draw_positions(rng, num_samples, photos, split, (height * scale, width * scale))
    patches = np.stack([_cut_patch(photos, position, shape, scale) for position in positions])
    dataset = _ood_dataset(_min_max_scale(patches))
    dataset.patch_positions = torch.from_numpy(positions)
    return dataset


@functools.lru_cache(maxsize=1)
def _load_photos() -> tuple[np.ndarray, ...]:
    """Return scikit-learn's sample photographs as uint8 arrays ``[427, 640, 3]``, china first."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    order = np.argsort([str(name) for name in bunch.filenames])  # china.jpg, flower.jpg
    return tuple(bunch.images[int(index)] for index in order)


def _draw_positions(
    rng: np.random.Generator,
    num_samples: int,
    photos: Sequence[np.ndarray],
    split: str,
    patch_size: tuple[int, int],
) -> np.ndarray:
    """Return ``[num_samples, 3]`` distinct int64 rows ``(photo index, top, left)`` inside the split's half."""
    photo_height, photo_width = photos[0].shape[:2]
    half_width = photo_width // 2
    patch_height, patch_width = patch_size
    if patch_height > photo_height or patch_width > half_width:
        raise ValueError(
            f"a photo patch of {patch_height}x{patch_width} pixels does not fit in half a photograph "
            f"({photo_height}x{half_width} pixels); lower scale or the image size in shape"
        )
    rows = photo_height - patch_height + 1
    columns = half_width - patch_width + 1
    num_positions = len(photos) * rows * columns
    if num_samples > num_positions:
        raise ValueError(
            f"num_samples={num_samples} exceeds the {num_positions} distinct patch positions; "
            "lower num_samples or scale"
        )
    # Distinct positions, so no patch repeats within a set.
    flat = rng.choice(num_positions, size=num_samples, replace=False)
    photo_index, within = np.divmod(flat, rows * columns)
    top, left = np.divmod(within, columns)
    left = left + (0 if split == "train" else half_width)
    return np.stack([photo_index, top, left], axis=1).astype(np.int64)


def _cut_patch(
    photos: Sequence[np.ndarray], position: np.ndarray, shape: tuple[int, int, int], scale: int
) -> np.ndarray:
    """Return one ``[C, H, W]`` float64 patch, averaged over ``scale x scale`` blocks, before scaling."""
    channels, height, width = shape
    photo_index, top, left = (int(value) for value in position)
    pixels = photos[photo_index][top : top + height * scale, left : left + width * scale].astype(np.float64)
    if channels == 1:
        pixels = (pixels @ _LUMA_WEIGHTS)[:, :, None]  # [H*scale, W*scale, 1]
    blocks = pixels.reshape(height, scale, width, scale, channels)
    return blocks.mean(axis=(1, 3)).transpose(2, 0, 1)


def _min_max_scale(images: np.ndarray) -> np.ndarray:
    """Map each image of ``[N, ...]`` linearly onto [-1, 1]; a constant image becomes zeros."""
    flat = images.reshape(len(images), -1)
    low = flat.min(axis=1, keepdims=True)
    spread = flat.max(axis=1, keepdims=True) - low
    constant = spread == 0
    scaled = 2.0 * (flat - low) / np.where(constant, 1.0, spread) - 1.0
    scaled = np.where(constant, 0.0, scaled)
    return scaled.reshape(images.shape)


def _check_arguments(
    name: str, split: Any, num_samples: Any, seed: Any, shape: Any
) -> tuple[np.random.Generator, int, tuple[int, int, int]]:
    """Validate the common arguments and return the split's random generator, count and shape."""
    check_split(split, FAR_OOD_SPLITS, name)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"num_samples must be an int > 0, got {num_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if (
        isinstance(shape, (str, bytes))
        or not isinstance(shape, Sequence)
        or len(shape) != 3
        or not all(isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0 for size in shape)
    ):
        raise ValueError(f"shape must be three positive ints (C, H, W), got {shape!r}")
    rng = np.random.default_rng([int(seed), _SPLIT_STREAMS[split]])
    return rng, int(num_samples), tuple(int(size) for size in shape)


def _ood_dataset(images: np.ndarray) -> LabeledTensorDataset:
    x = torch.from_numpy(images.astype(np.float32)).clamp_(-1.0, 1.0)
    y = torch.full((len(x),), OOD_LABEL, dtype=torch.long)
    return LabeledTensorDataset(x, y, num_classes=None)


register_dataset("photo-patches", make_photo_patches)
register_dataset("uniform-noise", make_uniform_noise)
register_dataset("gaussian-noise", make_gaussian_noise)
