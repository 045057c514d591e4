"""Torchvision datasets (CIFAR-10/100, SVHN, MNIST) and image folders read from local files.

Nothing is downloaded unless ``download=True`` is passed. The default transform maps pixels
to [-1, 1] as 2 * p / 255 - 1. torchvision is imported inside the builders, so importing
``energyview.data`` stays fast.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from .registry import DATA_RANGE, OOD_LABEL, check_split, register_dataset

__all__ = [
    "TORCHVISION_DATASETS",
    "VisionDataset",
    "make_image_folder",
    "make_torchvision_dataset",
    "to_signed_unit",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TorchvisionSpec:
    class_name: str
    splits: tuple[str, ...]
    num_classes: int
    input_shape: tuple[int, int, int]
    expected_files: str


_SPECS = {
    "cifar10": _TorchvisionSpec("CIFAR10", ("train", "test"), 10, (3, 32, 32), "cifar-10-batches-py/"),
    "cifar100": _TorchvisionSpec("CIFAR100", ("train", "test"), 100, (3, 32, 32), "cifar-100-python/"),
    "svhn": _TorchvisionSpec("SVHN", ("train", "test", "extra"), 10, (3, 32, 32), "<split>_32x32.mat"),
    "mnist": _TorchvisionSpec("MNIST", ("train", "test"), 10, (1, 28, 28), "MNIST/raw/"),
}
#: Names of the torchvision datasets that :func:`make_torchvision_dataset` builds.
TORCHVISION_DATASETS = tuple(_SPECS)
# Folder names that mark a split layout ``root/<split>/<class>/<image>`` in an image folder.
_SPLIT_FOLDER_NAMES = ("train", "test", "val", "validation", "ood")


class VisionDataset(Dataset):
    """Wrap a torchvision dataset so it returns ``(x, y)`` with ``y`` a 0-dim int64 tensor.

    ``ood=True`` replaces every label by -1 and sets ``num_classes`` to ``None``.
    ``data_range`` is ``(-1.0, 1.0)`` with the default transform and ``None`` with a custom one.
    """

    def __init__(
        self,
        base: Dataset,
        num_classes: int,
        input_shape: tuple[int, ...],
        data_range: tuple[float, float] | None,
        classes: Sequence[str] | None,
        ood: bool = False,
    ) -> None:
        self.base = base
        self.ood = bool(ood)
        self.num_classes = None if ood else num_classes
        self.input_shape = tuple(input_shape)
        self.data_range = data_range
        self.classes = None if ood or classes is None else tuple(str(name) for name in classes)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[index]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"the transform must return a tensor, got {type(x).__name__}; end it with ToTensor()")
        label = OOD_LABEL if self.ood else int(y)
        return x, torch.tensor(label, dtype=torch.long)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({type(self.base).__name__}, num_samples={len(self)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes}, data_range={self.data_range})"
        )


def to_signed_unit(image: Any) -> torch.Tensor:
    """Convert a PIL image or ``[H, W, C]`` uint8 array to a float32 ``[C, H, W]`` tensor in [-1, 1]."""
    from torchvision.transforms.functional import to_tensor

    return to_tensor(image).mul_(2.0).sub_(1.0)


def make_torchvision_dataset(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    download: bool = False,
    transform: Callable[[Any], torch.Tensor] | None = None,
    ood: bool = False,
) -> VisionDataset:
    """Build ``cifar10``, ``cifar100``, ``svhn`` or ``mnist`` from the files under ``root``.

    Splits are ``"train"`` and ``"test"`` (SVHN also ``"extra"``). With the default transform
    images are ``[3, 32, 32]`` (``[1, 28, 28]`` for MNIST) in [-1, 1]. With a custom
    ``transform``, ``input_shape`` is read from the first sample and ``data_range`` is ``None``.

    Raises:
        ValueError: for an unknown name or split, or a missing ``root``.
        FileNotFoundError: if the files are not under ``root`` and ``download`` is false.
    """
    if name not in _SPECS:
        raise ValueError(f"unknown torchvision dataset {name!r}; use one of {', '.join(TORCHVISION_DATASETS)}")
    spec = _SPECS[name]
    check_split(split, spec.splits, name)
    if root is None or str(root) == "":
        raise ValueError(f"dataset {name!r} needs root=<folder with its files>; pass download=True to fetch them there")
    base = _open_torchvision(name, spec, Path(root), split, bool(download), transform or to_signed_unit)
    classes = getattr(base, "classes", None) or [str(label) for label in range(spec.num_classes)]
    if transform is None:
        return VisionDataset(base, spec.num_classes, spec.input_shape, DATA_RANGE, classes, ood=ood)
    return VisionDataset(base, spec.num_classes, _first_shape(base), None, classes, ood=ood)


def _open_torchvision(
    name: str, spec: _TorchvisionSpec, root: Path, split: str, download: bool, transform: Callable[[Any], Any]
) -> Dataset:
    from torchvision import datasets

    dataset_class = getattr(datasets, spec.class_name)
    split_argument = {"split": split} if name == "svhn" else {"train": split == "train"}
    try:
        return dataset_class(str(root), transform=transform, download=download, **split_argument)
    except RuntimeError as error:
        # torchvision raises RuntimeError("Dataset not found ...") for missing or corrupted files.
        if download or "not found" not in str(error).lower():
            raise
        raise FileNotFoundError(
            f"{name} {split} files not found under root={str(root)!r} (expected {spec.expected_files} there); "
            "pass download=True to download them, or point root at a folder that contains them"
        ) from error


def _first_shape(base: Dataset) -> tuple[int, ...]:
    if len(base) == 0:
        raise ValueError(f"{type(base).__name__} has no samples, so its input shape is unknown")
    x = base[0][0]
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the transform must return a tensor, got {type(x).__name__}; end it with ToTensor()")
    return tuple(int(size) for size in x.shape)


class _ConvertMode:
    """Converter of PIL images to ``mode`` ("L" or "RGB"), a class so that DataLoader workers can pickle it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Any) -> Any:
        return image.convert(self.mode)


def make_image_folder(
    split: str = "train",
    *,
    root: str | Path | None = None,
    image_size: int | Sequence[int] | None = None,
    channels: int = 3,
    transform: Callable[[Any], torch.Tensor] | None = None,
    ood: bool = False,
) -> VisionDataset:
    """Build ``image-folder``: torchvision ``ImageFolder`` on ``root/<class>/<image>``.

    If ``root/<split>`` is a folder, it is read (layout ``root/<split>/<class>/<image>``).
    Otherwise the class folders sit directly in ``root`` and ``split`` only names the set. Labels follow
    the sorted class folder names. The default transform resizes the shorter side to
    ``max(image_size)``, crops the centre to ``image_size``, converts to ``channels``
    (1 = grayscale, 3 = RGB) and maps pixels to [-1, 1]. ``ood=True`` labels every image -1.

    Raises:
        FileNotFoundError: if ``root`` is not a folder or contains no class folder with images.
        ValueError: if ``root`` has split folders but not ``split``, or for a bad size.
    """
    if root is None or str(root) == "":
        raise ValueError("image-folder needs root=<folder with one subfolder of images per class>")
    directory = _split_directory(Path(root), split)
    if transform is None:
        size = _check_image_size(image_size)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        base = _open_image_folder(directory, _folder_transform(size, channels))
        return VisionDataset(base, len(base.classes), (channels, *size), DATA_RANGE, base.classes, ood=ood)
    base = _open_image_folder(directory, transform)
    return VisionDataset(base, len(base.classes), _first_shape(base), None, base.classes, ood=ood)


def _split_directory(root: Path, split: str) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"image folder root {str(root)!r} is not a folder; point root at your images")
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    if (root / split).is_dir():
        return root / split
    present = [name for name in _SPLIT_FOLDER_NAMES if (root / name).is_dir()]
    if present:
        raise ValueError(
            f"image folder {str(root)!r} has split folders {present} but no {split!r}; pass split= one of them"
        )
    logger.debug("image folder %s has no %r subfolder; reading its class folders directly", root, split)
    return root


def _check_image_size(image_size: Any) -> tuple[int, int]:
    sizes = [image_size, image_size] if isinstance(image_size, int) else image_size
    if (
        image_size is None
        or isinstance(image_size, (bool, str))
        or not isinstance(sizes, Sequence)
        or len(sizes) != 2
        or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes)
    ):
        raise ValueError(f"image_size must be an int > 0 or a pair (height, width) of them, got {image_size!r}")
    return int(sizes[0]), int(sizes[1])


def _folder_transform(size: tuple[int, int], channels: int) -> Callable[[Any], torch.Tensor]:
    from torchvision import transforms

    return transforms.Compose(
        [
            _ConvertMode("L" if channels == 1 else "RGB"),
            transforms.Resize(max(size)),
            transforms.CenterCrop(size),
            to_signed_unit,
        ]
    )


def _open_image_folder(directory: Path, transform: Callable[[Any], Any]) -> Dataset:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(directory), transform=transform)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no class folders with images under {str(directory)!r}: {error}; "
            "lay the images out as root/<class>/<image> (one subfolder even for a single class)"
        ) from error


for _name in TORCHVISION_DATASETS:
    register_dataset(_name, functools.partial(make_torchvision_dataset, _name))
del _name
register_dataset("image-folder", make_image_folder)
