"""Post-hoc OOD scores with declared orientation, and exact rank-based OOD and calibration metrics."""

from .metrics import (
    OODMetrics,
    ReliabilityBins,
    accuracy,
    aupr_in,
    aupr_out,
    auroc,
    expected_calibration_error,
    fpr_at_tpr,
    ood_metrics,
    read_scores,
    reliability_bins,
    roc_curve_points,
)
from .scores import OODScore, compute_scores, get_score, list_scores, register_score, score_from_energy_matrix

__all__ = [
    "OODMetrics",
    "OODScore",
    "ReliabilityBins",
    "accuracy",
    "aupr_in",
    "aupr_out",
    "auroc",
    "compute_scores",
    "expected_calibration_error",
    "fpr_at_tpr",
    "get_score",
    "list_scores",
    "ood_metrics",
    "read_scores",
    "register_score",
    "reliability_bins",
    "roc_curve_points",
    "score_from_energy_matrix",
]

from . import input_scores  # noqa: E402,F401 - registers the "grad_norm" input score
from . import zero_shot  # noqa: E402,F401 - registers the "mcm" score
