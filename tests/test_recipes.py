import json
import re

import pytest
from energyview.cli import main
from energyview.recipes import RecipeError, load_recipe, recipe_from_dict


@pytest.mark.parametrize("data,message", [
    ({"trian": {}}, "recipe.yaml: unknown key 'trian'; did you mean 'train'?"),
    ({"train": {"guard": {"retries": 1}}}, "train.guard: unknown key 'retries'; did you mean 'max_retries'?"),
    ({"train": {"epochs": "3"}}, r"train.epochs must be an integer, got str \('3'\)"),
    ({"train": {"grad_clip": True}}, r"train.grad_clip must be a number or null, got bool \(True\)"),
    ({"train": {"lr": -1}}, "train.lr must be a number > 0, got -1.0"),
    ({"model": {"temperature": 0}}, "model.temperature: temperature must be finite and > 0, got 0.0"),
    ({"evaluation": {"temperature": -2}}, "evaluation.temperature: temperature must be finite and > 0"),
    ({"evaluation": {"tpr": 95}}, r"evaluation.tpr must lie in \(0, 1\], got 95.0; for 95% write 0.95"),
    ({"data": []}, "data must be a mapping, got list"),
])
def test_recipe_errors_name_key_and_fix(data, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict({"name": "x", **data}, "recipe.yaml")


def test_integers_are_accepted_as_floats():
    recipe = recipe_from_dict({"name": "x", "train": {"lr": 1, "betas": [0.9, 0.99]}})
    assert recipe.train.lr == 1.0
    assert isinstance(recipe.train.lr, float)
    assert recipe.train.betas == (0.9, 0.99)


def test_overrides_are_named_in_errors():
    with pytest.raises(RecipeError, match=r"digits-classifier.yaml with --set train.lr=-1: train.lr must be a number > 0"):
        load_recipe("digits-classifier", ["train.lr=-1"])


def test_override_without_equals_sign():
    with pytest.raises(RecipeError, match="must look like section.key=value"):
        load_recipe("digits-classifier", ["train.lr"])


def test_shipped_recipes_all_load():
    from energyview.recipes import list_recipes

    names = list_recipes()
    assert {"digits-classifier", "digits-open-set", "digits-jem", "cifar10-jem", "digits-simclr", "text-topics"} <= set(names)
    for name in names:
        assert load_recipe(name).name == name


@pytest.mark.parametrize("override,message", [
    ("evaluation.scores=[energy, msq]", "unknown OOD score 'msq'"),
    ("evaluation.ood_sets=[photo-patchs]", "unknown dataset 'photo-patchs'.*Did you mean 'photo-patches'"),
])
def test_evaluation_typos_fail_before_training(tmp_path, capsys, override, message):
    code = main(["train", "digits-classifier", "--out", str(tmp_path), "--set", override])
    assert code == 2
    assert not (tmp_path / "checkpoint-last.pt").exists()  # rejected before the first step
    assert re.search(message, capsys.readouterr().err)


def test_ood_rejects_non_checkpoint_file(tmp_path, capsys):
    (tmp_path / "bad.pt").write_text("garbage\n")
    code = main(["ood", str(tmp_path / "bad.pt")])
    assert code == 2
    assert "is not a readable checkpoint" in capsys.readouterr().err


def test_ood_explains_runs_without_checkpoint(tmp_path, capsys):
    (tmp_path / "recipe.json").write_text(json.dumps({"task": "zero-shot-text"}))
    code = main(["ood", str(tmp_path)])
    assert code == 2
    assert "run of task 'zero-shot-text' without a checkpoint" in capsys.readouterr().err


def test_ood_default_folder_keeps_training_report(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "digits-classifier", "--out", str(run), "--set", "train.epochs=1", "--set", "evaluation.plots=false"]) == 0
    original = (run / "metrics.json").read_text()
    assert main(["ood", str(run), "--temperature", "2"]) == 0
    assert (run / "metrics.json").read_text() == original
    again = json.loads((run / "ood-T2" / "metrics.json").read_text())
    assert again["temperature"] == 2.0


def test_sample_rejects_non_png_before_sampling(tmp_path, capsys):
    code = main(["sample", str(tmp_path), "--out", str(tmp_path / "grid.txt")])
    assert code == 2
    assert "--out must name a .png file" in capsys.readouterr().err
