"""One string factory for datasets, the preloaded dataset type, and loader helpers.

Every dataset that :func:`build_dataset` returns is a map-style ``torch.utils.data.Dataset``
of ``(x, y)`` pairs: ``x`` is a float32 tensor ``[C, H, W]`` and ``y`` a 0-dim int64 tensor,
with ``y = -1`` for out-of-distribution (OOD) sets. Each one also carries ``num_classes``
(``None`` for OOD sets), ``input_shape`` (``(C, H, W)``) and ``data_range`` (``(-1.0, 1.0)``
for the built-in transforms, ``None`` when a custom transform makes the range unknown).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = [
    "DATA_RANGE",
    "OOD_LABEL",
    "LabeledTensorDataset",
    "build_dataset",
    "check_split",
    "dataset_tensors",
    "list_datasets",
    "make_loader",
    "register_dataset",
]

#: Pixel range of every built-in dataset with its default transform.
DATA_RANGE = (-1.0, 1.0)
#: Label of every sample of an OOD set.
OOD_LABEL = -1

_REQUIRED_ATTRIBUTES = ("num_classes", "input_shape", "data_range")
_BUILDERS: dict[str, Callable[..., Dataset]] = {}


class LabeledTensorDataset(TensorDataset):
    """A preloaded dataset of images ``x`` ``[N, C, H, W]`` (float32) and labels ``y`` ``[N]`` (int64).

    Indexing returns ``(x[i], y[i])`` with ``y[i]`` a 0-dim int64 tensor.

    Args:
        x: the images.
        y: the labels; ``-1`` marks OOD samples.
        num_classes: number of classes, or ``None`` for an OOD set.
        data_range: ``(low, high)`` that every pixel lies in, or ``None`` when unknown.
        classes: class names in label order, or ``None``.
        source_indices: ``[N]`` positions of the samples in the source data, or ``None``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        num_classes: int | None,
        data_range: tuple[float, float] | None = DATA_RANGE,
        classes: Sequence[str] | None = None,
        source_indices: torch.Tensor | None = None,
    ) -> None:
        _check_images_and_labels(x, y)
        super().__init__(x, y)
        self.num_classes = num_classes
        self.input_shape = tuple(int(size) for size in x.shape[1:])
        self.data_range = data_range
        self.classes = tuple(classes) if classes is not None else None
        self.source_indices = source_indices

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={len(self)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, data_range={self.data_range})"
        )


def _check_images_and_labels(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() != 4:
        found = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"images must be a float32 tensor [N, C, H, W], got a {found}; convert with x.float()")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
        found = f"{y.dtype} tensor of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise TypeError(f"labels must be an int64 tensor [N], got a {found}; convert with y.long()")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"images and labels must have the same length, got {x.shape[0]} images and {y.shape[0]} labels"
        )


def check_split(split: Any, allowed: Sequence[str], dataset_name: str) -> str:
    """Return ``split`` unchanged, raising ``ValueError`` unless it is one of ``allowed``."""
    if split not in allowed:
        raise ValueError(f"dataset {dataset_name!r} has no split {split!r}; use one of {', '.join(map(repr, allowed))}")
    return split


def register_dataset(name: str, builder: Callable[..., Dataset], overwrite: bool = False) -> None:
    """Register ``builder(split=..., **kwargs) -> Dataset`` under ``name``.

    Raises:
        ValueError: if ``name`` is already registered and ``overwrite`` is false, or is empty.
        TypeError: if ``name`` is not a string or ``builder`` is not callable.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__} ({name!r})")
    if not name.strip():
        raise ValueError("dataset name must not be empty")
    if not callable(builder):
        raise TypeError(f"builder for dataset {name!r} must be callable, got {type(builder).__name__}")
    if name in _BUILDERS and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered; pass overwrite=True to replace it")
    _BUILDERS[name] = builder


def list_datasets() -> list[str]:
    """Return the registered dataset names, sorted."""
    return sorted(_BUILDERS)


def check_dataset_name(name: str) -> None:
    """Raise ``ValueError`` listing the known names and close matches unless ``name`` is registered."""
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), list(_BUILDERS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}.{hint}")


def build_dataset(name: str, split: str = "train", **kwargs: Any) -> Dataset:
    """Build the registered dataset ``name`` for ``split``, passing ``kwargs`` to its builder.

    Raises:
        ValueError: for an unknown name; the message lists the known names and close matches.
        TypeError: if the builder returns a dataset without ``num_classes``, ``input_shape``
            or ``data_range``.

    Example:
        >>> test = build_dataset("digits", split="test")
        >>> len(test), test.input_shape, test.num_classes, test.data_range
        (450, (1, 8, 8), 10, (-1.0, 1.0))
    """
    check_dataset_name(name)
    dataset = _BUILDERS[name](split=split, **kwargs)
    missing = [attribute for attribute in _REQUIRED_ATTRIBUTES if not hasattr(dataset, attribute)]
    if missing:
        raise TypeError(
            f"the builder of dataset {name!r} returned a {type(dataset).__name__} without {', '.join(missing)}; "
            "set these attributes on the dataset it returns"
        )
    return dataset


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """Return a ``DataLoader`` whose shuffling and worker seeds follow from ``seed`` alone.

    The loader owns a ``torch.Generator`` seeded with ``seed``, so two loaders built with the
    same arguments give the same batches in the same order, epoch after epoch. Each worker also
    seeds Python's ``random`` and NumPy from its own torch seed.

    Example:
        >>> loader = make_loader(build_dataset("digits", split="test"), batch_size=64, shuffle=True, seed=0)
        >>> x, y = next(iter(loader))
        >>> tuple(x.shape), y.dtype
        ((64, 1, 8, 8), torch.int64)
    """
    _check_count(batch_size, "batch_size", minimum=1)
    _check_count(num_workers, "num_workers", minimum=0)
    _check_count(seed, "seed", minimum=0)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        drop_last=bool(drop_last),
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
    )


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _check_count(value: Any, name: str, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def dataset_tensors(dataset: Dataset, max_samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack a small dataset into ``x`` ``[N, C, H, W]`` (float32) and ``y`` ``[N]`` (int64).

    Returns copies, so editing them leaves the dataset as it was. ``max_samples`` keeps only
    the first samples. A preloaded :class:`LabeledTensorDataset` is sliced directly; any other
    dataset is read item by item, so keep it small.

    Example:
        >>> x, y = dataset_tensors(build_dataset("digits", split="test"), max_samples=5)
        >>> tuple(x.shape), tuple(y.shape)
        ((5, 1, 8, 8), (5,))
    """
    if max_samples is not None:
        _check_count(max_samples, "max_samples", minimum=1)
    count = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    if count == 0:
        raise ValueError(f"cannot stack an empty dataset ({type(dataset).__name__} has 0 samples)")
    if isinstance(dataset, LabeledTensorDataset):
        x, y = dataset.tensors
        return x[:count].clone(), y[:count].clone()
    images, labels = [], []
    for index in range(count):
        x, y = _split_pair(dataset[index], index)
        images.append(x)
        labels.append(y)
    return torch.stack(images).float(), torch.stack(labels)


def _split_pair(item: Any, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(f"dataset item {index} must be an (x, y) pair, got {type(item).__name__}")
    x, y = item
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x of dataset item {index} must be a tensor, got {type(x).__name__}; add a ToTensor transform")
    return x, torch.as_tensor(y, dtype=torch.long).reshape(())
