"""Handwritten digits from scikit-learn, with a fixed train/test split and an open-set split.

``load_digits`` ships 1,797 real 8x8 grayscale digits (classes 0-9, pixel values 0..16) with
scikit-learn, so these datasets work offline. Pixels are scaled to [-1, 1] as x / 8 - 1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from .registry import OOD_LABEL, LabeledTensorDataset, check_split, register_dataset

__all__ = [
    "DIGITS_SPLIT_SEED",
    "DIGITS_TEST_SIZE",
    "OPEN_SET_KNOWN_CLASSES",
    "make_digits",
    "make_digits_open_set",
]

#: ``random_state`` of the stratified train/test split; fixed so that the split never depends
#: on a training seed.
DIGITS_SPLIT_SEED = 0
#: Fraction of each class held out for the test split (450 of 1,797 samples).
DIGITS_TEST_SIZE = 0.25
#: Digits that are in-distribution in ``digits-open-set``; the other digits are near-OOD.
OPEN_SET_KNOWN_CLASSES = (0, 1, 2, 3, 4)

_NUM_DIGITS = 10


@functools.lru_cache(maxsize=1)
def _load_digits_split() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Return all images ``[1797, 1, 8, 8]`` in [-1, 1], all labels ``[1797]`` and the split indices."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy((bunch.images / 8.0 - 1.0).astype(np.float32)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_indices, test_indices = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_SIZE,
        stratify=bunch.target,
        random_state=DIGITS_SPLIT_SEED,
    )
    split_indices = {
        "train": torch.from_numpy(np.sort(train_indices)),
        "test": torch.from_numpy(np.sort(test_indices)),
    }
    return images, labels, split_indices


def make_digits(split: str = "train") -> LabeledTensorDataset:
    """Build the ``digits`` dataset: ``[1, 8, 8]`` images in [-1, 1], labels 0-9.

    ``split`` is ``"train"`` (1,347 samples) or ``"test"`` (450 samples). The split is
    scikit-learn's ``train_test_split`` with ``test_size=DIGITS_TEST_SIZE``, stratified by
    class, ``random_state=DIGITS_SPLIT_SEED``; the two splits never share a sample.
    ``source_indices`` contains each sample's position in ``load_digits()``.

    Example:
        >>> train = make_digits("train")
        >>> len(train), train.num_classes
        (1347, 10)
        >>> x, y = train[0]
        >>> tuple(x.shape), x.dtype, y.dtype
        ((1, 8, 8), torch.float32, torch.int64)
    """
    check_split(split, ("train", "test"), "digits")
    images, labels, split_indices = _load_digits_split()
    indices = split_indices[split]
    return LabeledTensorDataset(
        images[indices],
        labels[indices],
        num_classes=_NUM_DIGITS,
        classes=[str(digit) for digit in range(_NUM_DIGITS)],
        source_indices=indices.clone(),
    )


def make_digits_open_set(
    split: str = "train", known_classes: Sequence[int] = OPEN_SET_KNOWN_CLASSES
) -> LabeledTensorDataset:
    """Build the open-set split of ``digits``: known digits are in-distribution, the rest near-OOD.

    ``"train"`` and ``"test"`` keep the known digits of the ``digits`` train and test splits,
    relabelled 0..K-1 in increasing digit order (with the default, digit d gets label d).
    ``"ood"`` contains the other digits of the ``digits`` test split, all labelled -1, with
    ``num_classes=None``. Its ``source_indices`` still point into ``load_digits()``.

    Example:
        >>> ood = make_digits_open_set("ood")
        >>> len(ood), ood.num_classes, int(ood[0][1])
        (224, None, -1)
    """
    check_split(split, ("train", "test", "ood"), "digits-open-set")
    known = _check_known_classes(known_classes)
    images, labels, split_indices = _load_digits_split()
    base = split_indices["test" if split == "ood" else split]
    is_known = torch.isin(labels[base], torch.tensor(known))
    if split == "ood":
        indices = base[~is_known]
        new_labels = torch.full((len(indices),), OOD_LABEL, dtype=torch.long)
        return LabeledTensorDataset(images[indices], new_labels, num_classes=None, source_indices=indices)
    indices = base[is_known]
    label_map = torch.full((_NUM_DIGITS,), OOD_LABEL, dtype=torch.long)
    label_map[torch.tensor(known)] = torch.arange(len(known))
    return LabeledTensorDataset(
        images[indices],
        label_map[labels[indices]],
        num_classes=len(known),
        classes=[str(digit) for digit in known],
        source_indices=indices,
    )


def _check_known_classes(known_classes: Sequence[int]) -> list[int]:
    """Return the known digits sorted, raising ``ValueError`` unless they are distinct digits 0-9."""
    if isinstance(known_classes, (str, bytes)) or not isinstance(known_classes, Sequence):
        raise TypeError(f"known_classes must be a sequence of digits 0-9, got {known_classes!r}")
    for digit in known_classes:
        if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)):
            raise TypeError(f"known_classes must contain integer digits, got {digit!r} in {known_classes!r}")
    known = [int(digit) for digit in known_classes]
    if len(set(known)) != len(known) or not all(0 <= digit < _NUM_DIGITS for digit in known):
        raise ValueError(f"known_classes must be distinct digits in 0..9, got {known_classes!r}")
    if not 1 <= len(known) < _NUM_DIGITS:
        raise ValueError(
            "known_classes must keep at least one digit and leave at least one for the OOD split, "
            f"got {known_classes!r}"
        )
    return sorted(known)


register_dataset("digits", make_digits)
register_dataset("digits-open-set", make_digits_open_set)
