"""Wide ResNet (Zagoruyko and Komodakis, 2016) with optional normalisation, as used by JEM.

JEM trains WRN-28-10 without BatchNorm and with LeakyReLU(0.2): BatchNorm couples the samples of
a batch, which breaks the energy of a single x that Langevin sampling differentiates.
"""

from __future__ import annotations

from torch import nn

from .registry import register_network

__all__ = ["WideResNet"]


def _norm(kind: str | None, channels: int) -> nn.Module:
    if kind is None or kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    raise ValueError(f"unknown norm {kind!r}; choose 'none', 'batch' or 'group'")


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: str | None, slope: float, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = _norm(norm, c_in), _norm(norm, c_out)
        self.act = nn.LeakyReLU(slope)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=True)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = nn.Identity() if c_in == c_out and stride == 1 else nn.Conv2d(c_in, c_out, 1, stride, bias=True)

    def forward(self, x):
        out = self.conv1(self.act(self.norm1(x)))
        out = self.conv2(self.dropout(self.act(self.norm2(out))))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-depth-widen returning ``[B, num_classes]`` logits for ``[B, C, H, W]`` inputs.

    Args:
        depth: 6n + 4 (28 for WRN-28-10).
        widen: width multiplier (10 for WRN-28-10).
        norm: ``None``/``"none"`` (JEM), ``"batch"`` or ``"group"``.
        slope: LeakyReLU negative slope (JEM uses 0.2).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        depth: int = 28,
        widen: int = 10,
        norm: str | None = None,
        slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4 (for example 28), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, 1, 1)]
        for stage in range(3):
            for i in range(n):
                c_in = widths[stage] if i == 0 else widths[stage + 1]
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(_Block(c_in, widths[stage + 1], stride, norm, slope, dropout))
        layers += [_norm(norm, widths[3]), nn.LeakyReLU(slope), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        return self.head(self.features(x))


register_network("wide-resnet", WideResNet)
