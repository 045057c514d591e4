"""End-to-end runs of the ``energyview`` command on the real digits data."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from energyview.cli import main


def _run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_starts_without_heavy_imports():
    code = (
        "import sys; from energyview.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('timm', 'open_clip', 'transformers', 'torchmetrics', 'matplotlib') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_recipes_lists_shipped_recipes(capsys):
    code, out, _ = _run(capsys, "recipes")
    assert code == 0
    assert "digits-classifier" in out
    assert "digits-open-set" in out


def test_metrics_command_matches_sklearn(tmp_path, capsys):
    rng = np.random.default_rng(0)
    scores_in = np.round(rng.normal(-1000, 3, 300))  # energies far outside [0, 1], with ties
    scores_out = np.round(rng.normal(-997, 3, 200))
    (tmp_path / "in.txt").write_text("\n".join(map(str, scores_in)) + "\n")
    (tmp_path / "out.txt").write_text("\n".join(map(str, scores_out)))
    code, out, _ = _run(capsys, "metrics", "--in-scores", str(tmp_path / "in.txt"),
                        "--out-scores", str(tmp_path / "out.txt"), "--higher-is-ood")
    assert code == 0
    metrics = json.loads(out)
    labels = np.r_[np.zeros(300), np.ones(200)]
    scores = np.r_[scores_in, scores_out]
    assert abs(metrics["auroc"] - roc_auc_score(labels, scores)) < 1e-9
    assert abs(metrics["aupr_out"] - average_precision_score(labels, scores)) < 1e-9
    assert abs(metrics["aupr_in"] - average_precision_score(1 - labels, -scores)) < 1e-9
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert abs(metrics["fpr95_out_positive"] - fpr[np.searchsorted(tpr, 0.95)]) < 1e-9


def test_metrics_command_requires_orientation(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("1\n2\n")
    with pytest.raises(SystemExit):
        main(["metrics", "--in-scores", str(tmp_path / "a.txt"), "--out-scores", str(tmp_path / "a.txt")])


def test_metrics_command_reports_bad_line(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("1\nnan\n")
    (tmp_path / "b.txt").write_text("1\n2\n")
    code, _, err = _run(capsys, "metrics", "--in-scores", str(tmp_path / "a.txt"), "--out-scores", str(tmp_path / "b.txt"), "--lower-is-ood")
    assert code == 2
    assert "line 2: score 'nan' is not finite" in err


def test_train_rejects_unknown_recipe_key(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "digits-classifier", "--out", str(tmp_path), "--set", "train.epoch=3")
    assert code == 2
    assert "unknown key 'epoch'; did you mean 'epochs'?" in err


def test_train_rejects_unknown_recipe_name(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "digits-clasifier", "--out", str(tmp_path))
    assert code == 2
    assert "Did you mean digits-classifier" in err


def test_short_run_writes_run_folder_and_ood_reevaluates(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, _ = _run(capsys, "train", "digits-classifier", "--out", str(run), "--set", "train.epochs=2")
    assert code == 0
    assert "| photo-patches | energy |" in out
    for name in ("checkpoint-last.pt", "metrics.json", "metrics.csv", "ood_table.csv", "ood_table.md", "recipe.json",
                 "plots/reliability.png", "plots/roc-photo-patches.png", "plots/scores-uniform-noise.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("auroc", "fpr95_in_positive", "fpr95_out_positive", "aupr_in", "aupr_out"):
        assert 0.0 <= metrics["ood"]["gaussian-noise"]["msp"][key] <= 1.0
    assert 0.0 <= metrics["ece"] <= 1.0

    code, out, _ = _run(capsys, "ood", str(run), "--out", str(tmp_path / "again"))
    assert code == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["accuracy"] == metrics["accuracy"]
    assert again["ood"]["photo-patches"]["energy"] == metrics["ood"]["photo-patches"]["energy"]

    code, _, _ = _run(capsys, "ood", str(run), "--out", str(tmp_path / "hot"), "--temperature", "100")
    hot = json.loads((tmp_path / "hot" / "metrics.json").read_text())
    assert hot["temperature"] == 100.0
    assert hot["accuracy"] == metrics["accuracy"]  # the argmax does not depend on T
    assert hot["ece"] != metrics["ece"]


def test_ood_rejects_bad_temperature(tmp_path, capsys):
    code, _, err = _run(capsys, "ood", str(tmp_path / "missing"))
    assert code == 2
    assert "not found" in err


@pytest.mark.slow
def test_digits_classifier_recipe_reaches_accuracy(tmp_path, capsys):
    code, _, _ = _run(capsys, "train", "digits-classifier", "--out", str(tmp_path), "--set", "evaluation.plots=false")
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.98
    assert metrics["ece"] < 0.05
    for ood_set in ("photo-patches", "uniform-noise", "gaussian-noise"):
        assert set(metrics["ood"][ood_set]) == {"energy", "msp", "max_logit", "entropy"}


@pytest.mark.slow
def test_open_set_recipe_reports_scores_side_by_side(tmp_path, capsys):
    code, out, _ = _run(capsys, "train", "digits-open-set", "--out", str(tmp_path), "--set", "evaluation.plots=false")
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    near = metrics["ood"]["digits-open-set:ood"]
    assert metrics["accuracy"] >= 0.97
    assert near["energy"]["num_out"] == 224  # the test digits 5-9
    for score in ("energy", "msp", "max_logit"):
        assert 0.5 < near[score]["auroc"] <= 1.0
        assert f"| digits-open-set:ood | {score} |" in out
