"""Time energyview's OOD metrics against scikit-learn on the same scores, in the same run.

Usage: python benchmarks/bench_ood_metrics.py [--n 200000] [--repeats 5]

Prints the median time of each call and the ratio to scikit-learn (below 1 means faster). It also
checks that the values agree, so a fast but wrong metric cannot look good here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from energyview.ood.metrics import auroc, ood_metrics


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="total number of scores (half in, half out)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per call")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    scores_in = rng.normal(-1000.0, 3.0, args.n // 2)
    scores_out = rng.normal(-998.0, 3.0, args.n - args.n // 2)
    labels = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    scores = np.r_[scores_in, scores_out]

    ours = auroc(scores_in, scores_out, higher_is_ood=True)
    reference = roc_auc_score(labels, scores)
    if abs(ours - reference) > 1e-9:
        raise SystemExit(f"AUROC disagrees with scikit-learn: {ours} vs {reference}")

    t_sklearn_auroc = _median_seconds(lambda: roc_auc_score(labels, scores), args.repeats)
    t_sklearn_both = _median_seconds(
        lambda: (roc_auc_score(labels, scores), average_precision_score(labels, scores), average_precision_score(1 - labels, -scores)),
        args.repeats,
    )
    t_auroc = _median_seconds(lambda: auroc(scores_in, scores_out, higher_is_ood=True), args.repeats)
    t_all = _median_seconds(lambda: ood_metrics(scores_in, scores_out, higher_is_ood=True), args.repeats)

    print(f"{args.n} scores, median of {args.repeats}")
    print(f"scikit-learn roc_auc_score:                  {t_sklearn_auroc * 1e3:8.1f} ms")
    print(f"energyview auroc:                            {t_auroc * 1e3:8.1f} ms  ratio {t_auroc / t_sklearn_auroc:.2f}")
    print(f"scikit-learn AUROC + both APs:               {t_sklearn_both * 1e3:8.1f} ms")
    print(f"energyview ood_metrics (AUROC, 2 FPR, 2 AP): {t_all * 1e3:8.1f} ms  ratio {t_all / t_sklearn_both:.2f}")


if __name__ == "__main__":
    main()
