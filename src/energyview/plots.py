"""PNG plots of a run: sample grids, score histograms, ROC curves, reliability diagrams.

matplotlib is imported inside each function with the non-interactive Agg backend, so importing
energyview stays fast and nothing needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["plot_reliability_diagram", "plot_roc_curves", "plot_score_histograms", "save_sample_grid"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def save_sample_grid(images: torch.Tensor, path: str | Path, nrow: int = 10, value_range: tuple[float, float] = (-1.0, 1.0),
                     title: str | None = None) -> Path:
    """Save ``[N, C, H, W]`` images in ``value_range`` as a grid PNG (``nrow`` images per row)."""
    from torchvision.utils import make_grid

    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    lo, hi = value_range
    grid = make_grid(((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1), nrow=nrow, padding=1, pad_value=1.0)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(3, nrow * 0.6), max(3, grid.shape[1] / grid.shape[2] * nrow * 0.6)))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if images.shape[1] == 1 else None, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_score_histograms(scores_in: Mapping[str, np.ndarray], scores_out: Mapping[str, np.ndarray], path: str | Path,
                          in_label: str = "in-distribution", out_label: str = "OOD", title: str | None = None) -> Path:
    """Plot one panel per score with overlaid histograms of the in-distribution and OOD values."""
    plt = _pyplot()
    names = list(scores_in)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        a, b = np.asarray(scores_in[name]), np.asarray(scores_out[name])
        bins = np.histogram_bin_edges(np.concatenate([a, b]), bins=40)
        ax.hist(a, bins=bins, alpha=0.6, density=True, label=in_label)
        ax.hist(b, bins=bins, alpha=0.6, density=True, label=out_label)
        ax.set_title(name)
        ax.set_xlabel("score")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, y=1.05)
    return _save(fig, path)


def plot_roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str | None = None,
                    aurocs: Mapping[str, float] | None = None) -> Path:
    """Plot ``{score name: (fpr, tpr)}`` ROC curves (OOD as the positive class) on one axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    styles = ["-", "--", "-.", ":"]  # scores often coincide (energy and max-logit), so vary the line style
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        label = f"{name} (AUROC {aurocs[name]:.3f})" if aurocs and name in aurocs else name
        ax.plot(fpr, tpr, label=label, linestyle=styles[i % len(styles)], linewidth=1.6)
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate (in-distribution flagged)")
    ax.set_ylabel("true positive rate (OOD flagged)")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_reliability_diagram(confidence: Sequence[float], accuracy: Sequence[float], counts: Sequence[int],
                             path: str | Path, ece: float | None = None, title: str | None = None) -> Path:
    """Plot per-bin accuracy against the diagonal of perfect calibration, with each bin's count."""
    plt = _pyplot()
    confidence, accuracy, counts = map(np.asarray, (confidence, accuracy, counts))
    n_bins = len(counts)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    filled = counts > 0
    ax.bar(edges[:-1][filled], accuracy[filled], width=1.0 / n_bins, align="edge", edgecolor="black", label="accuracy")
    low = np.minimum(confidence, accuracy)[filled]
    gap = np.abs(confidence - accuracy)[filled]
    ax.bar(edges[:-1][filled], gap, bottom=low, width=1.0 / n_bins, align="edge", color="none",
           edgecolor="red", hatch="//", label="|confidence - accuracy|")
    for left, top, count in zip(edges[:-1][filled], np.maximum(confidence, accuracy)[filled], counts[filled]):
        ax.text(left + 0.5 / n_bins, min(top + 0.01, 0.97), str(int(count)), ha="center", va="bottom", fontsize=6)
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-label probability)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or (f"ECE {ece:.4f}" if ece is not None else "reliability"))
    return _save(fig, path)
