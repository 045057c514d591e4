"""Datasets by name: ``build_dataset("digits", split="test")``, plus loader helpers.

Registered names: ``digits``, ``digits-open-set`` (scikit-learn's handwritten digits),
``photo-patches``, ``uniform-noise``, ``gaussian-noise`` (far-OOD sets), ``cifar10``,
``cifar100``, ``svhn``, ``mnist`` and ``image-folder`` (local files through torchvision).
Every dataset returns ``(x, y)`` with ``x`` float32 ``[C, H, W]`` and ``y`` a 0-dim int64
tensor (-1 for OOD sets) and exposes ``num_classes``, ``input_shape`` and ``data_range``.
"""

from .digits import (
    DIGITS_SPLIT_SEED,
    DIGITS_TEST_SIZE,
    OPEN_SET_KNOWN_CLASSES,
    make_digits,
    make_digits_open_set,
)
from .ood_sets import (
    DEFAULT_OOD_SHAPE,
    FAR_OOD_SPLITS,
    GAUSSIAN_NOISE_STD,
    PHOTO_PATCH_SCALE,
    make_gaussian_noise,
    make_photo_patches,
    make_uniform_noise,
)
from .registry import (
    DATA_RANGE,
    OOD_LABEL,
    LabeledTensorDataset,
    build_dataset,
    check_split,
    dataset_tensors,
    list_datasets,
    make_loader,
    register_dataset,
)
from .vision import TORCHVISION_DATASETS, VisionDataset, make_image_folder, make_torchvision_dataset, to_signed_unit
from . import augment, text  # noqa: F401 - registers text-topics and image-captions

__all__ = [
    "DATA_RANGE",
    "DEFAULT_OOD_SHAPE",
    "DIGITS_SPLIT_SEED",
    "DIGITS_TEST_SIZE",
    "FAR_OOD_SPLITS",
    "GAUSSIAN_NOISE_STD",
    "OOD_LABEL",
    "OPEN_SET_KNOWN_CLASSES",
    "PHOTO_PATCH_SCALE",
    "TORCHVISION_DATASETS",
    "LabeledTensorDataset",
    "VisionDataset",
    "build_dataset",
    "check_split",
    "dataset_tensors",
    "list_datasets",
    "make_digits",
    "make_digits_open_set",
    "make_gaussian_noise",
    "make_image_folder",
    "make_loader",
    "make_photo_patches",
    "make_torchvision_dataset",
    "make_uniform_noise",
    "register_dataset",
    "to_signed_unit",
]
