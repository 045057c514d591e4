"""OOD detection and calibration metrics, computed exactly from the ranking of the scores.

Every OOD metric takes the in-distribution scores ``scores_in`` and the OOD scores
``scores_out`` (1-D array-likes or tensors) and an explicit ``higher_is_ood``. The scores are
sorted once in float64 (O(n log n)) and grouped by distinct value, so ties are exact. No sigmoid
or rescaling is applied, so energies around -1000 work as they are. The result does not depend
on the order or batching of the samples. The values equal scikit-learn's ``roc_auc_score``,
``roc_curve`` and ``average_precision_score`` up to float rounding (about 1e-15).

FPR at a target TPR exists in two conventions that give different numbers on the same scores:
``positive="out"`` (OOD is the positive class) and ``positive="in"`` (in-distribution is the
positive class, the FPR95 of Liu et al. 2020, "Energy-based Out-of-distribution Detection").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "OODMetrics",
    "ReliabilityBins",
    "accuracy",
    "aupr_in",
    "aupr_out",
    "auroc",
    "expected_calibration_error",
    "fpr_at_tpr",
    "ood_metrics",
    "read_scores",
    "reliability_bins",
    "roc_curve_points",
]

_SIDE_NAMES = {"scores_in": "in-distribution", "scores_out": "OOD"}
_PROBABILITY_SUM_TOLERANCE = 1e-3


# ----------------------------------------------------------------------------- validation


def _to_numpy(values: Any, name: str) -> np.ndarray:
    """Convert ``values`` (array-like or tensor) to a numpy array, raising TypeError on non-numeric input."""
    if isinstance(values, torch.Tensor):
        if values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {values.dtype}")
        values = values.detach().to("cpu")
        return values.double().numpy() if values.is_floating_point() else values.numpy()
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must contain real numbers, got dtype {array.dtype}; convert it with np.asarray(..., float)")
    return array


def _check_all_finite(array: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        flat_index = int(np.flatnonzero(bad.reshape(-1))[0])
        index = np.unravel_index(flat_index, array.shape)
        index_text = index[0] if len(index) == 1 else tuple(int(i) for i in index)
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf), first {array[index]} at index "
            f"{index_text}; drop or fix these samples before computing metrics"
        )


def _check_scores(values: Any, name: str, allow_empty: bool = False) -> np.ndarray:
    """Convert ``values`` to a finite 1-D float64 array. Every error message names ``name``."""
    array = _to_numpy(values, name).astype(np.float64, copy=False)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one score per sample), got shape {array.shape}; "
            "flatten it with .reshape(-1) if it holds one score per sample"
        )
    if array.size == 0 and not allow_empty:
        side = _SIDE_NAMES.get(name, name)
        raise ValueError(
            f"{name} is empty: OOD metrics need at least one {side} score; "
            "check that the data loader for this side yielded samples"
        )
    _check_all_finite(array, name)
    return array


def _check_orientation(higher_is_ood: Any) -> bool:
    if not isinstance(higher_is_ood, (bool, np.bool_)):
        raise TypeError(
            f"higher_is_ood must be True or False, got {higher_is_ood!r}; "
            "it states whether a larger score means more OOD (the OODScore of each score declares it)"
        )
    return bool(higher_is_ood)


def _check_tpr(tpr: Any) -> Fraction:
    """Return the target TPR as an exact fraction of the decimal the float prints as (0.95 -> 19/20)."""
    if isinstance(tpr, bool) or not isinstance(tpr, (int, float, np.integer, np.floating)):
        raise TypeError(f"tpr must be a number in (0, 1], got {tpr!r}")
    value = float(tpr)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"tpr must lie in (0, 1], got {value}; for FPR at 95% TPR pass tpr=0.95")
    return Fraction(repr(value))


def _check_positive(positive: Any) -> str:
    if positive not in ("in", "out"):
        raise ValueError(
            f"positive must be 'out' (OOD is the positive class) or 'in' (in-distribution is the positive "
            f"class, the FPR95 of Liu et al. 2020), got {positive!r}"
        )
    return positive


# ----------------------------------------------------------------------------- ranking core


class _Ranking(NamedTuple):
    """Distinct scores from most to least OOD, with how many OOD and ID samples have each."""

    thresholds: np.ndarray  # [G] float64, oriented so that higher = more OOD, strictly decreasing
    out_counts: np.ndarray  # [G] int64
    in_counts: np.ndarray  # [G] int64


def _rank(scores_in: np.ndarray, scores_out: np.ndarray, higher_is_ood: bool) -> _Ranking:
    """Sort both sides together once and group equal scores (ties are one threshold)."""
    sign = 1.0 if higher_is_ood else -1.0  # negation is exact, so orienting never merges scores
    scores = np.concatenate([sign * scores_out, sign * scores_in])
    is_out = np.zeros(scores.size, dtype=np.int64)
    is_out[: scores_out.size] = 1

    order = np.argsort(-scores)  # most OOD first
    sorted_scores = scores[order]
    group_ends = np.append(np.flatnonzero(np.diff(sorted_scores)) + 1, scores.size)  # exclusive ends

    cumulative_out = np.cumsum(is_out[order])[group_ends - 1]
    out_counts = np.diff(cumulative_out, prepend=0)
    in_counts = np.diff(group_ends, prepend=0) - out_counts
    return _Ranking(sorted_scores[group_ends - 1], out_counts, in_counts)


def _positive_curve(ranking: _Ranking, positive: str) -> tuple[np.ndarray, np.ndarray]:
    """Return cumulative (true positives, false positives) per threshold, most positive first."""
    if positive == "out":
        return np.cumsum(ranking.out_counts), np.cumsum(ranking.in_counts)
    return np.cumsum(ranking.in_counts[::-1]), np.cumsum(ranking.out_counts[::-1])


def _auroc(ranking: _Ranking) -> float:
    """Return P(OOD score ranks above ID score) + P(tie) / 2, from exact integer counts."""
    num_in = int(ranking.in_counts.sum())
    num_out = int(ranking.out_counts.sum())
    in_below = num_in - np.cumsum(ranking.in_counts)  # ID samples strictly less OOD than each group
    twice_wins = 2 * int(np.dot(ranking.out_counts, in_below)) + int(np.dot(ranking.out_counts, ranking.in_counts))
    return twice_wins / (2 * num_in * num_out)


def _fpr_at_tpr(ranking: _Ranking, target: Fraction, positive: str) -> float:
    """Return the FPR at the first threshold (most positive first) whose TPR >= ``target``."""
    true_pos, false_pos = _positive_curve(ranking, positive)
    # TPR >= target  <=>  true_pos >= target * num_pos  <=>  true_pos >= ceil(target * num_pos), in integers.
    num_pos = int(true_pos[-1])
    required = -((-target.numerator * num_pos) // target.denominator)
    index = int(np.searchsorted(true_pos, required, side="left"))
    return float(false_pos[index]) / float(false_pos[-1])


def _average_precision(ranking: _Ranking, positive: str) -> float:
    """Return the step-wise AP: the sum over thresholds of (recall step) * precision."""
    true_pos, false_pos = _positive_curve(ranking, positive)
    recall_steps = np.diff(true_pos, prepend=0)
    precision = true_pos / (true_pos + false_pos)
    return float(np.dot(recall_steps, precision) / true_pos[-1])


def _fpr_key(target: Fraction, positive: str) -> str:
    percent = format((Decimal(target.numerator) / Decimal(target.denominator) * 100).normalize(), "f")
    return f"fpr{percent}_{positive}_positive"


def _metrics_from_ranking(ranking: _Ranking, target: Fraction) -> dict[str, float | int]:
    return {
        "auroc": _auroc(ranking),
        _fpr_key(target, "in"): _fpr_at_tpr(ranking, target, "in"),
        _fpr_key(target, "out"): _fpr_at_tpr(ranking, target, "out"),
        "aupr_in": _average_precision(ranking, "in"),
        "aupr_out": _average_precision(ranking, "out"),
        "num_in": int(ranking.in_counts.sum()),
        "num_out": int(ranking.out_counts.sum()),
    }


def _ranking_of(scores_in: Any, scores_out: Any, higher_is_ood: Any) -> _Ranking:
    orientation = _check_orientation(higher_is_ood)
    return _rank(_check_scores(scores_in, "scores_in"), _check_scores(scores_out, "scores_out"), orientation)


# ----------------------------------------------------------------------------- public OOD metrics


def auroc(scores_in: Any, scores_out: Any, *, higher_is_ood: bool) -> float:
    """Return the area under the ROC curve of separating OOD from in-distribution samples.

    AUROC = P(s_out ranks more OOD than s_in) + P(tie) / 2 over all (ID, OOD) pairs, the
    Mann-Whitney U statistic divided by n_in * n_out. It is the same whichever class is called
    positive, so it takes no ``positive`` argument.

    Args:
        scores_in: ``[n_in]`` scores of in-distribution samples.
        scores_out: ``[n_out]`` scores of OOD samples.
        higher_is_ood: True when a larger score means more OOD (energy), False otherwise (MSP).

    Example:
        >>> round(auroc([0.1, 0.2, 0.3], [0.25, 0.9], higher_is_ood=True), 4)  # 5 of 6 pairs
        0.8333
    """
    return _auroc(_ranking_of(scores_in, scores_out, higher_is_ood))


def fpr_at_tpr(scores_in: Any, scores_out: Any, *, higher_is_ood: bool, tpr: float = 0.95, positive: str) -> float:
    """Return the false positive rate at the first threshold where the TPR reaches ``tpr``.

    Thresholds are the distinct scores, swept from the most positive to the least. With
    ``positive="out"`` TPR is the fraction of OOD samples flagged and FPR the fraction of ID
    samples flagged. With ``positive="in"`` TPR is the fraction of ID samples accepted and FPR the
    fraction of OOD samples accepted (the FPR95 of Liu et al. 2020). The two differ in general.
    The result equals ``fpr[argmax(tpr >= target)]`` of scikit-learn's
    ``roc_curve(..., drop_intermediate=False)`` for the matching positive class.

    The comparison TPR >= target is exact: ``tpr`` is read as the decimal it prints as (0.95 means
    19/20) and the number of positives needed is ceil(target * n_pos) in integer arithmetic.

    Example:
        >>> ids, oods = [0.1, 0.4, 0.5, 0.7, 0.9], [0.3, 0.6, 0.8]
        >>> fpr_at_tpr(ids, oods, higher_is_ood=True, tpr=0.6, positive="out")  # 2 of 3 OOD flagged
        0.4
        >>> round(fpr_at_tpr(ids, oods, higher_is_ood=True, tpr=0.6, positive="in"), 4)  # 3 of 5 ID kept
        0.3333
    """
    target = _check_tpr(tpr)
    side = _check_positive(positive)
    return _fpr_at_tpr(_ranking_of(scores_in, scores_out, higher_is_ood), target, side)


def aupr_in(scores_in: Any, scores_out: Any, *, higher_is_ood: bool) -> float:
    """Return the average precision with in-distribution as the positive class.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct thresholds from most ID to least, the
    step-wise area that scikit-learn's ``average_precision_score`` computes (no interpolation).
    """
    return _average_precision(_ranking_of(scores_in, scores_out, higher_is_ood), "in")


def aupr_out(scores_in: Any, scores_out: Any, *, higher_is_ood: bool) -> float:
    """Return the average precision with OOD as the positive class (see :func:`aupr_in`)."""
    return _average_precision(_ranking_of(scores_in, scores_out, higher_is_ood), "out")


def ood_metrics(scores_in: Any, scores_out: Any, *, higher_is_ood: bool, tpr: float = 0.95) -> dict[str, float | int]:
    """Return all OOD metrics from one sort of the scores.

    Keys: ``"auroc"``, ``"fpr95_in_positive"``, ``"fpr95_out_positive"``, ``"aupr_in"``,
    ``"aupr_out"``, ``"num_in"``, ``"num_out"``. The number in the FPR keys is ``100 * tpr``
    (``tpr=0.9`` gives ``"fpr90_in_positive"``).

    Example:
        >>> result = ood_metrics([0.1, 0.4, 0.5, 0.7, 0.9], [0.3, 0.6, 0.8], higher_is_ood=True, tpr=0.6)
        >>> result["fpr60_out_positive"], result["num_in"], result["num_out"]
        (0.4, 5, 3)
    """
    target = _check_tpr(tpr)
    return _metrics_from_ranking(_ranking_of(scores_in, scores_out, higher_is_ood), target)


def roc_curve_points(scores_in: Any, scores_out: Any, *, higher_is_ood: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(fpr, tpr, thresholds)`` of the ROC curve with OOD as the positive class.

    The curve has one point per distinct score, most OOD first, after a leading (0, 0) point.
    A sample is flagged OOD at threshold t when ``score >= t`` (``higher_is_ood=True``) or
    ``score <= t`` (``higher_is_ood=False``). The thresholds are in the caller's score units, and
    the first one is +inf or -inf. With ``higher_is_ood=True`` the arrays equal scikit-learn's
    ``roc_curve(..., drop_intermediate=False)``; otherwise its thresholds are negated.
    """
    orientation = _check_orientation(higher_is_ood)
    ranking = _ranking_of(scores_in, scores_out, orientation)
    true_pos, false_pos = _positive_curve(ranking, "out")
    fpr = np.concatenate([[0.0], false_pos / false_pos[-1]])
    tpr = np.concatenate([[0.0], true_pos / true_pos[-1]])
    thresholds = np.concatenate([[np.inf], ranking.thresholds])
    return fpr, tpr, thresholds if orientation else -thresholds


# ----------------------------------------------------------------------------- accumulator


class OODMetrics:
    """Accumulate scores batch by batch and compute the same dict as :func:`ood_metrics`.

    ``update`` stores each batch; ``compute`` ranks everything seen so far, so the result does not
    depend on how the samples were split into batches or ordered.

    Args:
        higher_is_ood: True when a larger score means more OOD.
        tpr: target TPR of the two FPR entries.

    Example:
        >>> metric = OODMetrics(higher_is_ood=True)
        >>> metric.update([0.1, 0.2], is_ood=False)
        >>> metric.update([0.9, 0.15], is_ood=[True, False])
        >>> metric.compute()["auroc"]
        1.0
    """

    def __init__(self, *, higher_is_ood: bool, tpr: float = 0.95) -> None:
        self.higher_is_ood = _check_orientation(higher_is_ood)
        self.tpr = float(tpr)
        self._target = _check_tpr(tpr)
        self.reset()

    def reset(self) -> None:
        """Remove every stored score."""
        self._in: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        self._num_batches = 0

    def update(self, scores: Any, is_ood: Any) -> None:
        """Store a batch of ``[B]`` scores. ``is_ood`` is one bool for the whole batch or a ``[B]`` mask."""
        name = f"scores of batch {self._num_batches}"
        batch = _check_scores(scores, name, allow_empty=True)
        mask = self._check_mask(is_ood, batch.size, name)
        self._in.append(batch[~mask])
        self._out.append(batch[mask])
        self._num_batches += 1

    @staticmethod
    def _check_mask(is_ood: Any, size: int, name: str) -> np.ndarray:
        if isinstance(is_ood, (bool, np.bool_)):
            return np.full(size, bool(is_ood))
        mask = is_ood.detach().cpu().numpy() if isinstance(is_ood, torch.Tensor) else np.asarray(is_ood)
        if mask.dtype != np.bool_:
            if not np.issubdtype(mask.dtype, np.integer):
                raise TypeError(f"is_ood must be a bool or a mask of bools (or 0/1) for {name}, got dtype {mask.dtype}")
            if not np.isin(mask, (0, 1)).all():
                raise ValueError(f"is_ood for {name} must contain only 0 and 1, got values {np.unique(mask)[:5].tolist()}")
            mask = mask.astype(bool)
        if mask.shape != (size,):
            raise ValueError(f"is_ood must have shape [{size}] to match {name}, got {mask.shape}")
        return mask

    def compute(self) -> dict[str, float | int]:
        """Return the metrics of every score stored since the last :meth:`reset`."""
        scores_in = np.concatenate(self._in) if self._in else np.empty(0)
        scores_out = np.concatenate(self._out) if self._out else np.empty(0)
        for side, values in (("in-distribution", scores_in), ("OOD", scores_out)):
            if values.size == 0:
                raise ValueError(
                    f"no {side} scores were passed to update() since the last reset; "
                    f"OOD metrics need at least one score of each class"
                )
        return _metrics_from_ranking(_rank(scores_in, scores_out, self.higher_is_ood), self._target)


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram over equal-width confidence bins.

    ``edges`` is ``[n_bins + 1]``; ``counts``, ``confidence`` and ``accuracy`` are ``[n_bins]``.
    ``confidence`` and ``accuracy`` are the mean top-label confidence and the fraction correct in
    each bin, NaN where a bin is empty.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def _check_class_scores(values: Any, name: str) -> np.ndarray:
    array = _to_numpy(values, name).astype(np.float64, copy=False)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be [N, num_classes] with N >= 1, got shape {array.shape}; "
            "for binary probabilities p stack them as [1 - p, p]"
        )
    _check_all_finite(array, name)
    return array


def _check_class_labels(labels: Any, num_samples: int, num_classes: int) -> np.ndarray:
    array = _to_numpy(labels, "labels")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {array.dtype}; cast them with .long() or .astype(int)")
    if array.shape != (num_samples,):
        raise ValueError(f"labels must have shape [{num_samples}] to match the predictions, got {array.shape}")
    out_of_range = (array < 0) | (array >= num_classes)
    if out_of_range.any():
        bad = int(array[out_of_range][0])
        raise ValueError(f"label {bad} is out of range for {num_classes} classes; labels must lie in [0, {num_classes - 1}]")
    return array.astype(np.int64, copy=False)


def _check_probabilities(probs: Any) -> np.ndarray:
    array = _check_class_scores(probs, "probs")
    row_sums = array.sum(axis=1)
    bad_rows = np.flatnonzero((np.abs(row_sums - 1.0) > _PROBABILITY_SUM_TOLERANCE) | (array < 0).any(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        raise ValueError(
            f"probs must be non-negative with rows summing to 1 (within {_PROBABILITY_SUM_TOLERANCE}), but "
            f"{bad_rows.size} row(s) are not, first row {row} (sum {row_sums[row]:.6g}); apply softmax to logits first"
        )
    return array


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}; 15 is the usual choice")
    return int(n_bins)


def _calibration_sums(probs: Any, labels: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (edges, counts, sum of confidence, number correct) per bin."""
    array = _check_probabilities(probs)
    targets = _check_class_labels(labels, array.shape[0], array.shape[1])
    n_bins = _check_n_bins(n_bins)
    confidence = array.max(axis=1)
    correct = (array.argmax(axis=1) == targets).astype(np.float64)

    # Edges are the float64 values nearest k / n_bins. A confidence equal to an edge goes to the bin
    # on its right ([k/n, (k+1)/n)), and confidence 1.0 goes to the last bin.
    edges = np.arange(n_bins + 1) / n_bins
    index = np.minimum(np.searchsorted(edges, confidence, side="right") - 1, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(index, weights=correct, minlength=n_bins)
    return edges, counts, confidence_sums, correct_sums


def reliability_bins(probs: Any, labels: Any, n_bins: int = 15) -> ReliabilityBins:
    """Return counts, mean confidence and accuracy per equal-width confidence bin.

    Args:
        probs: ``[N, K]`` class probabilities (rows sum to 1).
        labels: ``[N]`` integer labels in ``[0, K)``.
        n_bins: number of bins over [0, 1]; bins are [k/n, (k+1)/n) and the last one includes 1.
    """
    edges, counts, confidence_sums, correct_sums = _calibration_sums(probs, labels, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ReliabilityBins(edges, counts, confidence_sums / counts, correct_sums / counts)


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Return the top-label expected calibration error over equal-width bins.

    ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|, where the confidence of a sample is
    its largest probability and it is correct when that class is its label (Guo et al. 2017,
    "On Calibration of Modern Neural Networks"). Bins are [k/n, (k+1)/n), and confidence 1.0
    counts in the last bin. torchmetrics' ``multiclass_calibration_error(norm="l1")`` (1.9)
    agrees except that it puts confidence exactly 1.0 in an extra bin of its own and works in float32.

    Example:
        >>> probs = [[0.4, 0.3, 0.3], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]]
        >>> labels = [1, 0, 2]  # wrong, right, wrong
        >>> round(expected_calibration_error(probs, labels, n_bins=2), 4)  # |0 - 0.4| / 3 + |0.5 - 0.8| * 2 / 3
        0.3333
    """
    _, counts, confidence_sums, correct_sums = _calibration_sums(probs, labels, n_bins)
    return float(np.abs(correct_sums - confidence_sums).sum() / counts.sum())


def accuracy(probs_or_logits: Any, labels: Any) -> float:
    """Return the fraction of rows whose largest entry is at the label (ties pick the first index).

    Example:
        >>> accuracy([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]], [0, 1, 1])
        0.6666666666666666
    """
    array = _check_class_scores(probs_or_logits, "probs_or_logits")
    targets = _check_class_labels(labels, array.shape[0], array.shape[1])
    return float(np.mean(array.argmax(axis=1) == targets))


# ----------------------------------------------------------------------------- files


def read_scores(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the scores in a text file with one number per line as a float64 array.

    Blank lines are skipped. A line that is not a finite number raises ``ValueError`` naming the
    file and the 1-based line number, and so does a file without any score.
    """
    scores = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{os.fspath(path)}, line {line_number}: {text[:40]!r} is not a number; write one score per line") from None
            if not math.isfinite(value):
                raise ValueError(f"{os.fspath(path)}, line {line_number}: score {text!r} is not finite; drop or fix that sample")
            scores.append(value)
    if not scores:
        raise ValueError(f"{os.fspath(path)} contains no scores; write one score per line")
    return np.asarray(scores, dtype=np.float64)
