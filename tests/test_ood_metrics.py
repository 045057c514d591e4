"""OOD and calibration metrics against scikit-learn, torchmetrics, hand computations and loops."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from energyview.ood import (
    OODMetrics,
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

SEEDS = [0, 1, 2, 3]
TPRS = [0.95, 0.9, 0.7, 0.5, 1.0]


def make_scores(seed, tied):
    """Return (scores_in, scores_out) with OOD shifted up. ``tied`` draws ID integers 0..3 and OOD integers 1..4."""
    rng = np.random.default_rng(seed)
    if tied:
        return rng.integers(0, 4, 57).astype(float), rng.integers(1, 5, 43).astype(float)
    return rng.normal(0.0, 1.0, 57), rng.normal(0.8, 1.0, 43)


def sklearn_reference(scores_in, scores_out, higher_is_ood, tpr):
    """Compute every metric with scikit-learn on scores oriented so that higher = more OOD."""
    sign = 1.0 if higher_is_ood else -1.0
    oriented = sign * np.concatenate([scores_in, scores_out])
    is_ood = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    fpr_out, tpr_out, _ = roc_curve(is_ood, oriented, pos_label=1, drop_intermediate=False)
    fpr_in, tpr_in, _ = roc_curve(is_ood, -oriented, pos_label=0, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(is_ood, oriented),
        "fpr_out": fpr_out[np.argmax(tpr_out >= tpr)],
        "fpr_in": fpr_in[np.argmax(tpr_in >= tpr)],
        "aupr_out": average_precision_score(is_ood, oriented, pos_label=1),
        "aupr_in": average_precision_score(is_ood, -oriented, pos_label=0),
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("higher_is_ood", [True, False])
def test_metrics_match_sklearn(seed, tied, higher_is_ood):
    scores_in, scores_out = make_scores(seed, tied)
    if not higher_is_ood:
        scores_in, scores_out = -scores_in, -scores_out
    for tpr in TPRS:
        expected = sklearn_reference(scores_in, scores_out, higher_is_ood, tpr)
        result = ood_metrics(scores_in, scores_out, higher_is_ood=higher_is_ood, tpr=tpr)
        key = f"fpr{round(tpr * 100)}"
        assert result["auroc"] == pytest.approx(expected["auroc"], abs=1e-9)
        assert result["aupr_in"] == pytest.approx(expected["aupr_in"], abs=1e-9)
        assert result["aupr_out"] == pytest.approx(expected["aupr_out"], abs=1e-9)
        assert result[f"{key}_out_positive"] == pytest.approx(expected["fpr_out"], abs=1e-12), tpr
        assert result[f"{key}_in_positive"] == pytest.approx(expected["fpr_in"], abs=1e-12), tpr


@pytest.mark.parametrize("higher_is_ood", [True, False])
def test_single_metrics_match_dict(higher_is_ood):
    scores_in, scores_out = make_scores(5, tied=True)
    result = ood_metrics(scores_in, scores_out, higher_is_ood=higher_is_ood, tpr=0.9)
    kwargs = {"higher_is_ood": higher_is_ood}
    assert auroc(scores_in, scores_out, **kwargs) == result["auroc"]
    assert aupr_in(scores_in, scores_out, **kwargs) == result["aupr_in"]
    assert aupr_out(scores_in, scores_out, **kwargs) == result["aupr_out"]
    assert fpr_at_tpr(scores_in, scores_out, tpr=0.9, positive="in", **kwargs) == result["fpr90_in_positive"]
    assert fpr_at_tpr(scores_in, scores_out, tpr=0.9, positive="out", **kwargs) == result["fpr90_out_positive"]
    assert (result["num_in"], result["num_out"]) == (57, 43)


def test_metric_keys_follow_tpr():
    result = ood_metrics([0.0, 1.0], [2.0], higher_is_ood=True, tpr=0.999)
    assert set(result) == {
        "auroc",
        "fpr99.9_in_positive",
        "fpr99.9_out_positive",
        "aupr_in",
        "aupr_out",
        "num_in",
        "num_out",
    }


@pytest.mark.parametrize("higher_is_ood", [True, False])
def test_roc_curve_points_match_sklearn(higher_is_ood):
    scores_in, scores_out = make_scores(7, tied=True)
    fpr, tpr, thresholds = roc_curve_points(scores_in, scores_out, higher_is_ood=higher_is_ood)
    sign = 1.0 if higher_is_ood else -1.0
    is_ood = np.r_[np.zeros(57), np.ones(43)]
    ref_fpr, ref_tpr, ref_thresholds = roc_curve(
        is_ood, sign * np.r_[scores_in, scores_out], drop_intermediate=False
    )
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    np.testing.assert_array_equal(thresholds, sign * ref_thresholds)


def test_energies_near_minus_1000():
    # The same ranking on two scales: energies -1000 + k/1024 (exact in float64) and k / 40.
    rng = np.random.default_rng(3)
    levels_in, levels_out = rng.integers(0, 30, 80), rng.integers(10, 41, 60)
    energy = ood_metrics(-1000.0 + levels_in / 1024, -1000.0 + levels_out / 1024, higher_is_ood=True)
    unit = ood_metrics(levels_in / 40, levels_out / 40, higher_is_ood=True)
    assert energy == unit
    is_ood = np.r_[np.zeros(80), np.ones(60)]
    reference = roc_auc_score(is_ood, np.r_[-1000.0 + levels_in / 1024, -1000.0 + levels_out / 1024])
    assert energy["auroc"] == pytest.approx(reference, abs=1e-12)


def test_no_sigmoid_on_large_scores():
    # torchmetrics 1.9 applies a sigmoid to scores outside [0, 1]; in float32 sigmoid(20..23) is 1.0
    # for all four, so they tie and its AUROC is 0.5. The ranking itself separates them perfectly.
    from torchmetrics.functional.classification import binary_auroc

    scores = torch.tensor([20.0, 21.0, 22.0, 23.0])
    ours = auroc(scores[:2], scores[2:], higher_is_ood=True)
    theirs = binary_auroc(scores, torch.tensor([0, 0, 1, 1])).item()
    assert ours == 1.0
    assert roc_auc_score([0, 0, 1, 1], scores.numpy()) == 1.0
    assert theirs != ours


def test_fpr_by_hand_both_conventions():
    # 5 ID scores and 3 OOD scores, higher = more OOD, target TPR 0.6.
    #   sorted: 0.1 in, 0.3 out, 0.4 in, 0.5 in, 0.6 out, 0.7 in, 0.8 out, 0.9 in
    # positive="out": need ceil(0.6 * 3) = 2 OOD flagged. Lowering the threshold from the top:
    #   0.9 -> TP 0 FP 1, 0.8 -> TP 1 FP 1, 0.7 -> TP 1 FP 2, 0.6 -> TP 2 FP 2: FPR = 2/5 = 0.4.
    # positive="in": need ceil(0.6 * 5) = 3 ID accepted. Raising the threshold from the bottom:
    #   0.1 -> TP 1 FP 0, 0.3 -> TP 1 FP 1, 0.4 -> TP 2 FP 1, 0.5 -> TP 3 FP 1: FPR = 1/3.
    scores_in = [0.7, 0.1, 0.9, 0.5, 0.4]
    scores_out = [0.6, 0.3, 0.8]
    assert fpr_at_tpr(scores_in, scores_out, higher_is_ood=True, tpr=0.6, positive="out") == 0.4
    assert fpr_at_tpr(scores_in, scores_out, higher_is_ood=True, tpr=0.6, positive="in") == 1 / 3
    # Mirrored scores with the mirrored orientation give the same numbers.
    mirrored = {"higher_is_ood": False, "tpr": 0.6}
    assert fpr_at_tpr([-s for s in scores_in], [-s for s in scores_out], positive="out", **mirrored) == 0.4
    assert fpr_at_tpr([-s for s in scores_in], [-s for s in scores_out], positive="in", **mirrored) == 1 / 3


def test_fpr_target_compared_exactly():
    # 0.55 * 100 is 55.00000000000001 in float64, so a float ceil would ask for 56 of 100 positives.
    # ID scores 0..99 (lower = more ID): 55 ID are accepted at threshold 54, which accepts the OOD
    # score 40.5 but not 54.5 or 80.5, so FPR = 1/3. Threshold 55 would also accept 54.5.
    scores_in = np.arange(100.0)
    scores_out = np.array([40.5, 54.5, 80.5])
    assert math.ceil(0.55 * 100) == 56
    assert fpr_at_tpr(scores_in, scores_out, higher_is_ood=True, tpr=0.55, positive="in") == 1 / 3
    assert sklearn_reference(scores_in, scores_out, True, 0.55)["fpr_in"] == 1 / 3


def test_fpr95_with_ten_id_samples_is_finite():
    # With 10 ID samples the TPR moves in steps of 0.1, so 95% means all 10: threshold at the
    # most OOD ID score 9, which accepts the OOD scores 2 and 8 but not 11.
    scores_in = np.arange(10.0)
    value = fpr_at_tpr(scores_in, [2.0, 8.0, 11.0], higher_is_ood=True, positive="in")
    assert math.isfinite(value)
    assert value == pytest.approx(2 / 3)


def test_tpr_one_uses_last_positive():
    scores_in = [0.0, 1.0, 2.0]
    scores_out = [0.5, 3.0]
    # All OOD flagged needs threshold 0.5, which also flags ID scores 1 and 2.
    assert fpr_at_tpr(scores_in, scores_out, higher_is_ood=True, tpr=1.0, positive="out") == pytest.approx(2 / 3)


def test_conventions_differ():
    rng = np.random.default_rng(11)
    scores_in, scores_out = rng.normal(0, 1, 2000), rng.normal(1, 1.5, 2000)
    result = ood_metrics(scores_in, scores_out, higher_is_ood=True)
    assert abs(result["fpr95_in_positive"] - result["fpr95_out_positive"]) > 0.05


def test_shuffle_invariance():
    scores_in, scores_out = make_scores(2, tied=True)
    rng = np.random.default_rng(0)
    expected = ood_metrics(scores_in, scores_out, higher_is_ood=False)
    for _ in range(3):
        shuffled = ood_metrics(rng.permutation(scores_in), rng.permutation(scores_out), higher_is_ood=False)
        assert shuffled == expected


def test_accumulator_batching_identical():
    scores_in, scores_out = make_scores(4, tied=False)
    expected = ood_metrics(scores_in, scores_out, higher_is_ood=True, tpr=0.9)

    scores = np.r_[scores_in, scores_out]
    is_ood = np.r_[np.zeros(57, bool), np.ones(43, bool)]
    order = np.random.default_rng(1).permutation(100)
    metric = OODMetrics(higher_is_ood=True, tpr=0.9)
    for start, stop in [(0, 7), (7, 8), (8, 50), (50, 50), (50, 100)]:
        batch = order[start:stop]
        metric.update(torch.as_tensor(scores[batch]), torch.as_tensor(is_ood[batch]))
    assert metric.compute() == expected

    metric.reset()
    metric.update(scores_in, is_ood=False)
    metric.update(list(scores_out), is_ood=np.ones(43, dtype=int))
    assert metric.compute() == expected


def test_accumulator_errors():
    metric = OODMetrics(higher_is_ood=True)
    metric.update([0.1, 0.2], is_ood=False)
    with pytest.raises(ValueError, match="no OOD scores"):
        metric.compute()
    with pytest.raises(ValueError, match="shape \\[2\\]"):
        metric.update([0.1, 0.2], is_ood=[True])
    with pytest.raises(ValueError, match="batch 1 contains 1 non-finite"):
        metric.update([0.1, float("nan")], is_ood=True)
    with pytest.raises(TypeError, match="is_ood"):
        metric.update([0.1], is_ood=[0.5])


def test_torch_and_float32_inputs():
    scores_in = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float32, requires_grad=True)
    scores_out = torch.tensor([0.25, 0.9], dtype=torch.bfloat16)
    assert auroc(scores_in, scores_out, higher_is_ood=True) == pytest.approx(5 / 6)


def test_empty_side_errors():
    with pytest.raises(ValueError, match="scores_in is empty.*in-distribution"):
        auroc([], [1.0], higher_is_ood=True)
    with pytest.raises(ValueError, match="scores_out is empty.*OOD"):
        ood_metrics([1.0], np.array([]), higher_is_ood=True)


def test_non_finite_errors():
    with pytest.raises(ValueError, match=r"scores_out contains 2 non-finite .* first nan at index 1"):
        auroc([0.0], [1.0, float("nan"), float("inf")], higher_is_ood=True)
    with pytest.raises(ValueError, match=r"scores_in contains 1 non-finite .* first -inf at index 0"):
        fpr_at_tpr(torch.tensor([-float("inf")]), [1.0], higher_is_ood=True, positive="in")


def test_argument_errors():
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.zeros((2, 2)), [1.0], higher_is_ood=True)
    with pytest.raises(ValueError, match="1-D"):
        auroc(0.5, [1.0], higher_is_ood=True)
    for bad in [0.0, -0.1, 1.01, float("nan")]:
        with pytest.raises(ValueError, match="tpr must lie in"):
            fpr_at_tpr([0.0], [1.0], higher_is_ood=True, tpr=bad, positive="out")
    with pytest.raises(ValueError, match="positive must be"):
        fpr_at_tpr([0.0], [1.0], higher_is_ood=True, positive="ood")
    with pytest.raises(TypeError, match="higher_is_ood"):
        auroc([0.0], [1.0], higher_is_ood=None)
    with pytest.raises(TypeError, match="real numbers"):
        auroc(["a"], [1.0], higher_is_ood=True)


# ----------------------------------------------------------------------------- calibration


def random_probs(seed, n, k):
    generator = torch.Generator().manual_seed(seed)
    logits = 3.0 * torch.randn(n, k, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=generator)
    return torch.softmax(logits, dim=1), labels


def loop_ece(probs, labels, n_bins):
    """Compute ECE sample by sample with exact fractions. Bin k contains k/n <= c < (k+1)/n, and c = 1 goes to the last bin."""
    bins = [[] for _ in range(n_bins)]
    for row, label in zip(probs.tolist(), labels.tolist()):
        confidence = max(row)
        index = min(math.floor(Fraction(confidence) * n_bins), n_bins - 1)
        bins[index].append((confidence, float(row.index(confidence) == label)))
    total = sum(abs(sum(c for c, _ in b) - sum(a for _, a in b)) for b in bins)
    return total / len(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_torchmetrics(seed):
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs, labels = random_probs(seed, 300, 5)
    expected = multiclass_calibration_error(probs, labels, num_classes=5, n_bins=15, norm="l1").item()
    # torchmetrics bins in float32, so agreement is to float32 precision.
    assert expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-6)
    assert expected_calibration_error(probs, labels) == pytest.approx(loop_ece(probs, labels, 15), abs=1e-12)


def test_ece_edge_confidences_match_torchmetrics():
    from torchmetrics.functional.classification import multiclass_calibration_error

    # Confidences exactly 0.5 and 0.4 sit on bin edges of 10 bins and go to the bin on the right.
    # Two one-hot rows have confidence exactly 1.0, and no other confidence lies in [0.9, 1), so the
    # extra bin that torchmetrics gives 1.0 does not change its result.
    probs = torch.tensor(
        [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.45, 0.35], [0.3, 0.3, 0.4]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 2, 0, 1, 1, 0])
    expected = multiclass_calibration_error(probs, labels, num_classes=3, n_bins=10, norm="l1").item()
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(expected, abs=1e-7)
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(loop_ece(probs, labels, 10), abs=1e-12)
    bins = reliability_bins(probs, labels, n_bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 2, 2, 0, 0, 0, 2]


def test_ece_confidence_one_shares_last_bin():
    # 0.95 correct and 1.0 wrong share the bin [14/15, 1]: |0.5 - 0.975| = 0.475.
    # torchmetrics 1.9 puts 1.0 in a bin of its own and returns 0.05 / 2 + 1 / 2 = 0.525.
    probs = [[0.95, 0.05], [1.0, 0.0]]
    assert expected_calibration_error(probs, [0, 1]) == pytest.approx(0.475, abs=1e-12)
    assert loop_ece(torch.tensor(probs, dtype=torch.float64), torch.tensor([0, 1]), 15) == pytest.approx(0.475, abs=1e-12)


def test_reliability_bins_by_hand():
    probs = [[0.4, 0.3, 0.3], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.85, 0.1, 0.05]]
    bins = reliability_bins(probs, [1, 0, 2, 0], n_bins=2)
    np.testing.assert_array_equal(bins.edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(bins.counts, [1, 3])
    np.testing.assert_allclose(bins.confidence, [0.4, (0.9 + 0.7 + 0.85) / 3])
    np.testing.assert_allclose(bins.accuracy, [0.0, 2 / 3])
    empty = reliability_bins(probs, [1, 0, 2, 0], n_bins=4)
    assert np.isnan(empty.confidence[0])
    assert np.isnan(empty.accuracy[0])


def test_accuracy_matches_count():
    probs, labels = random_probs(4, 200, 7)
    expected = sum(int(row.argmax() == label) for row, label in zip(probs, labels)) / 200
    assert accuracy(probs, labels) == expected
    assert accuracy(torch.log(probs), labels.numpy()) == expected


def test_calibration_errors():
    with pytest.raises(ValueError, match="rows summing to 1.*first row 0"):
        expected_calibration_error([[2.0, -1.0]], [0])
    with pytest.raises(ValueError, match="rows summing to 1"):
        expected_calibration_error([[1.2, -0.2]], [0])
    with pytest.raises(ValueError, match="label 3 is out of range for 2 classes"):
        expected_calibration_error([[0.5, 0.5]], [3])
    with pytest.raises(ValueError, match="label -1 is out of range"):
        accuracy([[0.5, 0.5]], [-1])
    with pytest.raises(TypeError, match="labels must be integers"):
        accuracy([[0.5, 0.5]], [1.0])
    with pytest.raises(ValueError, match=r"shape \[1\]"):
        accuracy([[0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match=r"\[N, num_classes\]"):
        expected_calibration_error([0.5, 0.5], [0, 1])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([[0.5, 0.5]], [0], n_bins=0)
    with pytest.raises(ValueError, match="probs contains 1 non-finite"):
        expected_calibration_error([[float("nan"), 0.5]], [0])


# ----------------------------------------------------------------------------- files


def test_read_scores(tmp_path):
    path = tmp_path / "scores.txt"
    path.write_text("-1000.5\n\n  3e-2 \n7\n")
    np.testing.assert_array_equal(read_scores(path), [-1000.5, 0.03, 7.0])


def test_read_scores_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1.0\n\nabc\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: 'abc' is not a number"):
        read_scores(path)
    path.write_text("1.0\nnan\n")
    with pytest.raises(ValueError, match="line 2: score 'nan' is not finite"):
        read_scores(path)
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="contains no scores"):
        read_scores(path)
