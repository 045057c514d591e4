"""Evaluate an energy model: accuracy, calibration, and OOD metrics per score and OOD set.

The result is written to a run folder as ``metrics.json``, ``ood_table.csv``, ``ood_table.md``
and PNG plots (score histograms and ROC curves per OOD set, a reliability diagram).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..energies.base import EnergyModel, check_temperature, scoring_mode
from .metrics import ReliabilityBins, expected_calibration_error, ood_metrics, reliability_bins, roc_curve_points
from .scores import compute_scores, get_score, score_from_energy_matrix

__all__ = ["EvaluationResult", "collect_scores", "evaluate_ood", "format_table", "table_rows", "write_report"]

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("auroc", "fpr{p}_in_positive", "fpr{p}_out_positive", "aupr_in", "aupr_out")


@dataclass
class EvaluationResult:
    """Scores and metrics of one evaluation; ``metrics`` is what ``metrics.json`` holds."""

    metrics: dict[str, Any]
    scores_in: dict[str, np.ndarray]
    scores_out: dict[str, dict[str, np.ndarray]]
    reliability: ReliabilityBins | None = None


def collect_scores(model: EnergyModel, dataset: Dataset, names: Sequence[str], temperature: float,
                   batch_size: int = 256, device: torch.device | str = "cpu",
                   dataset_name: str = "dataset") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score every sample of ``dataset`` in eval mode, leaving the model as it was.

    Returns ``({score name: [N]}, {"probs": [N, K], "labels": [N]})``. The energy matrix is
    computed once per batch and shared by every score that only needs it. Scores that need the
    input, such as an input-gradient norm, get the batch itself.
    """
    t = check_temperature(temperature)
    if len(dataset) == 0:
        raise ValueError(f"{dataset_name} is empty; give it at least one sample or remove it from evaluation.ood_sets")
    matrix_scores = [n for n in names if not get_score(n).needs_input]
    input_scores = [n for n in names if get_score(n).needs_input]
    scores: dict[str, list[np.ndarray]] = {name: [] for name in names}
    probs, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x = x.to(device)
        with scoring_mode(model), torch.no_grad():
            matrix = model.energy_matrix(x).double()  # [B, K]
        for name in matrix_scores:
            scores[name].append(score_from_energy_matrix(name, matrix, t).cpu().numpy())
        if input_scores:
            for name, values in compute_scores(model, x, input_scores, temperature=t).items():
                scores[name].append(values.detach().double().cpu().numpy())
        probs.append(torch.softmax(-matrix / t, dim=1).cpu().numpy())
        labels.append(y.numpy())
    return {k: np.concatenate(v) for k, v in scores.items()}, {"probs": np.concatenate(probs), "labels": np.concatenate(labels)}


def evaluate_ood(model: EnergyModel, id_dataset: Dataset, ood_datasets: Mapping[str, Dataset], scores: Sequence[str],
                 temperature: float = 1.0, tpr: float = 0.95, batch_size: int = 256, ece_bins: int = 15,
                 device: torch.device | str = "cpu") -> EvaluationResult:
    """Accuracy and ECE on ``id_dataset``, and OOD metrics of each score against each OOD set."""
    if not ood_datasets:
        log.info("no OOD set given; reporting accuracy and calibration only")
    scores_in, outputs = collect_scores(model, id_dataset, scores, temperature, batch_size, device, "the in-distribution set")
    probs, labels = outputs["probs"], outputs["labels"]
    metrics: dict[str, Any] = {
        "accuracy": float((probs.argmax(axis=1) == labels).mean()),
        "ece": expected_calibration_error(probs, labels, n_bins=ece_bins),
        "nll": float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-300, None)).mean()),
        "num_test": int(len(labels)),
        "temperature": float(temperature),
        "score_orientation": {name: ("higher_is_ood" if get_score(name).higher_is_ood else "lower_is_ood") for name in scores},
        "ood": {},
    }
    scores_out: dict[str, dict[str, np.ndarray]] = {}
    for set_name, dataset in ood_datasets.items():
        scores_out[set_name], _ = collect_scores(model, dataset, scores, temperature, batch_size, device, f"OOD set {set_name!r}")
        metrics["ood"][set_name] = {
            name: ood_metrics(scores_in[name], scores_out[set_name][name], higher_is_ood=get_score(name).higher_is_ood, tpr=tpr)
            for name in scores
        }
    reliability = reliability_bins(probs, labels, n_bins=ece_bins)
    return EvaluationResult(metrics, scores_in, scores_out, reliability)


def _columns(tpr: float) -> list[str]:
    percent = f"{round(tpr * 100):d}"
    return [c.format(p=percent) for c in TABLE_COLUMNS]


def table_rows(metrics: Mapping[str, Any], tpr: float = 0.95) -> list[dict[str, Any]]:
    """Flatten ``metrics["ood"]`` into one row per (OOD set, score)."""
    rows = []
    for set_name, per_score in metrics["ood"].items():
        for score_name, values in per_score.items():
            rows.append({"ood_set": set_name, "score": score_name, **{c: values[c] for c in _columns(tpr)}})
    return rows


def format_table(metrics: Mapping[str, Any], tpr: float = 0.95) -> str:
    """Return the OOD table as Markdown, with accuracy and ECE above it."""
    columns = _columns(tpr)
    lines = [f"accuracy {metrics['accuracy']:.4f}   ECE {metrics['ece']:.4f}   (n = {metrics['num_test']})", ""]
    lines.append("| OOD set | score | " + " | ".join(columns) + " |")
    lines.append("|---|---|" + "---:|" * len(columns))
    for row in table_rows(metrics, tpr):
        lines.append(f"| {row['ood_set']} | {row['score']} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    return "\n".join(lines)


def write_report(result: EvaluationResult, out_dir: str | Path, tpr: float = 0.95, plots: bool = True,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``metrics.json``, ``ood_table.csv``, ``ood_table.md`` and the plots; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**result.metrics, **(extra or {})}
    paths = {"metrics": _write_atomic(out / "metrics.json", json.dumps(metrics, indent=2, sort_keys=False) + "\n")}
    paths["table_md"] = _write_atomic(out / "ood_table.md", format_table(metrics, tpr) + "\n")
    paths["table_csv"] = out / "ood_table.csv"
    with open(paths["table_csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ood_set", "score", *_columns(tpr)])
        writer.writeheader()
        writer.writerows(table_rows(metrics, tpr))
    if plots:
        paths.update(_write_plots(result, out / "plots"))
    return paths


def _write_plots(result: EvaluationResult, folder: Path) -> dict[str, Path]:
    from ..plots import plot_reliability_diagram, plot_roc_curves, plot_score_histograms

    paths = {}
    for set_name, per_score in result.scores_out.items():
        file_stem = set_name.replace(":", "-").replace("/", "-")  # "digits-open-set:ood" -> a plain file name
        paths[f"hist_{set_name}"] = plot_score_histograms(
            result.scores_in, per_score, folder / f"scores-{file_stem}.png", out_label=set_name, title=f"scores: in-distribution vs {set_name}")
        curves, aurocs = {}, {}
        for name in per_score:
            higher = get_score(name).higher_is_ood
            fpr, tpr, _ = roc_curve_points(result.scores_in[name], per_score[name], higher_is_ood=higher)
            curves[name] = (fpr, tpr)
            aurocs[name] = result.metrics["ood"][set_name][name]["auroc"]
        paths[f"roc_{set_name}"] = plot_roc_curves(curves, folder / f"roc-{file_stem}.png", title=f"ROC: {set_name} as positive", aurocs=aurocs)
    rel = result.reliability
    if rel is not None:
        paths["reliability"] = plot_reliability_diagram(rel.confidence, rel.accuracy, rel.counts, folder / "reliability.png", ece=result.metrics["ece"])
    return paths


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
