"""SimCLR augmentations for small images (8x8 digits) and a dataset wrapper that returns two views.

SimCLR (Chen et al. 2020) learns features that agree across two random views of an image, so
the views must differ in what the features should ignore (position, slant, stroke thickness,
noise) and keep what they should encode (the digit). Colour jitter and large crops, the
strongest augmentations on natural images, do not apply to 8x8 grey digits. Here every view
gets a random affine map (rotation, scale, shift), a random contrast change, a patch erased to
the background, and pixel noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["DigitsAugment", "TwoViewDataset"]


@dataclass
class DigitsAugment:
    """Random view of an image ``[C, H, W]`` (or a batch ``[N, C, H, W]``) with pixels in ``[low, high]``.

    Args:
        max_rotation: rotation angle drawn from U(-max_rotation, max_rotation), in degrees.
        scale: zoom factor drawn from U(scale[0], scale[1]); > 1 enlarges the digit.
        max_shift: shift drawn from U(-max_shift, max_shift) per axis, in pixels.
        contrast: the ink (pixel minus ``low``) is multiplied by U(contrast[0], contrast[1]).
        erase_prob: probability of erasing one square patch to ``low``.
        erase_size: side of the erased patch in pixels, drawn from this inclusive range.
        noise_std: standard deviation of the Gaussian pixel noise.
        low, high: pixel range; the background is ``low`` and views are clamped to the range.

    Pixels moved in from outside the image are background. Randomness comes from torch's
    global generator, so ``torch.manual_seed`` makes views repeatable.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> view = DigitsAugment()(torch.full((1, 8, 8), -1.0))
        >>> tuple(view.shape), bool(view.min() >= -1.0), bool(view.max() <= 1.0)
        ((1, 8, 8), True, True)
    """

    max_rotation: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    max_shift: float = 1.0
    contrast: tuple[float, float] = (0.7, 1.2)
    erase_prob: float = 0.5
    erase_size: tuple[int, int] = (2, 3)
    noise_std: float = 0.1
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_rotation", "max_shift", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.scale = _check_range(self.scale, "scale", minimum=1e-3)
        self.contrast = _check_range(self.contrast, "contrast", minimum=0.0)
        self.erase_size = tuple(int(v) for v in _check_range(self.erase_size, "erase_size", minimum=1))
        if not 0.0 <= self.erase_prob <= 1.0:
            raise ValueError(f"erase_prob must lie in [0, 1], got {self.erase_prob}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or not image.is_floating_point():
            found = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise TypeError(f"DigitsAugment takes a float image [C, H, W] or a batch [N, C, H, W], got {found}")
        batch = image.unsqueeze(0) if image.dim() == 3 else image
        ink = batch - self.low  # background 0, so that affine padding with zeros is background
        ink = self._affine(ink) * _uniform(batch.shape[0], self.contrast, batch).view(-1, 1, 1, 1)
        ink = self._erase(ink)
        view = (ink + self.low + self.noise_std * torch.randn_like(ink)).clamp(self.low, self.high)
        return view.squeeze(0) if image.dim() == 3 else view

    def _affine(self, ink: torch.Tensor) -> torch.Tensor:
        n, _, height, width = ink.shape
        angle = torch.deg2rad(_uniform(n, (-self.max_rotation, self.max_rotation), ink))
        zoom = _uniform(n, self.scale, ink)
        # affine_grid maps output to input coordinates in [-1, 1], so zooming in divides by zoom.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        shift_x = _uniform(n, (-self.max_shift, self.max_shift), ink) * 2.0 / width
        shift_y = _uniform(n, (-self.max_shift, self.max_shift), ink) * 2.0 / height
        theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)  # [N, 2, 3]
        grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
        return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _erase(self, ink: torch.Tensor) -> torch.Tensor:
        n, _, height, width = ink.shape
        erase = torch.rand(n) < self.erase_prob
        for index in erase.nonzero().flatten().tolist():
            size = int(torch.randint(self.erase_size[0], self.erase_size[1] + 1, ()).item())
            top = int(torch.randint(0, max(1, height - size + 1), ()).item())
            left = int(torch.randint(0, max(1, width - size + 1), ()).item())
            ink[index, :, top : top + size, left : left + size] = 0.0
        return ink


class TwoViewDataset(Dataset):
    """Return ``((view1, view2), y)`` for each ``(x, y)`` of ``dataset``: two independent views of x.

    This is the batch layout :class:`~energyview.objectives.SimCLRObjective` and
    :class:`~energyview.objectives.SupConObjective` read. ``num_classes``, ``input_shape`` and
    ``data_range`` are those of the wrapped dataset.
    """

    def __init__(self, dataset: Dataset, transform: DigitsAugment | None = None) -> None:
        self.dataset = dataset
        self.transform = transform if transform is not None else DigitsAugment()
        for name in ("num_classes", "input_shape", "data_range"):
            setattr(self, name, getattr(dataset, name, None))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return (self.transform(x), self.transform(x)), y


def _uniform(n: int, bounds: tuple[float, float], like: torch.Tensor) -> torch.Tensor:
    low, high = bounds
    return torch.rand(n, dtype=like.dtype, device=like.device) * (high - low) + low


def _check_range(values: tuple[float, float], name: str, minimum: float) -> tuple[float, float]:
    if len(values) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be two finite numbers (low, high), got {values!r}")
    low, high = float(values[0]), float(values[1])
    if not minimum <= low <= high:
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high, got {values!r}")
    return low, high
