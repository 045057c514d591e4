"""Turn a recipe into a trained, evaluated run folder.

A recipe names a task; each task builds its model, objective and data from the recipe, trains
with the shared :class:`~energyview.training.Trainer` and writes its report. Tasks register
by name, so that new kinds of runs plug in without touching the CLI.
"""

from __future__ import annotations

import difflib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from .data import build_dataset
from .energies.base import EnergyModel
from .energies.classifier import ClassifierEnergy
from .networks import build_network
from .objectives import build_objective
from .recipes import Recipe, recipe_from_dict
from .training import Trainer, load_checkpoint, resolve_device, seed_everything

__all__ = ["NoisyDataset", "WithOutliers", "build_classifier", "evaluate_checkpoint", "list_tasks", "register_task", "run_recipe"]

log = logging.getLogger(__name__)

TaskFn = Callable[[Recipe, Path, bool], dict[str, Any]]
_TASKS: dict[str, TaskFn] = {}


def register_task(name: str, fn: TaskFn, overwrite: bool = False) -> None:
    """Register ``fn(recipe, out_dir, resume) -> metrics`` as the task ``name``."""
    if name in _TASKS and not overwrite:
        raise ValueError(f"task {name!r} is already registered; pass overwrite=True to replace it")
    _TASKS[name] = fn


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def run_recipe(recipe: Recipe, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Run ``recipe`` into ``out_dir`` and return its metrics."""
    from . import tasks  # noqa: F401 - registers the tasks beyond "classifier"

    if recipe.task not in _TASKS:
        close = difflib.get_close_matches(recipe.task, list(_TASKS), n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown task {recipe.task!r} in recipe {recipe.name!r}; known tasks: {', '.join(list_tasks())}.{hint}")
    check_evaluation_names(recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
    return _TASKS[recipe.task](recipe, out, resume)


def check_evaluation_names(recipe: Recipe) -> None:
    """Reject unknown OOD score and dataset names before any training time is spent."""
    from .data.registry import check_dataset_name
    from .ood import get_score

    for name in recipe.evaluation.scores:
        get_score(name)  # raises with the known names and close matches
    entries = [recipe.data.name, *recipe.evaluation.ood_sets]
    if recipe.data.outliers:
        entries.append(recipe.data.outliers)
    for entry in entries:
        check_dataset_name(entry.partition(":")[0])


class NoisyDataset(Dataset):
    """Add N(0, std^2) noise to the input of each ``(x, y)`` sample, fresh on every access."""

    def __init__(self, dataset: Dataset, std: float) -> None:
        if std < 0:
            raise ValueError(f"data.noise_std must be >= 0, got {std}")
        self.dataset, self.std = dataset, std

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, *rest = self.dataset[index]
        return (x + self.std * torch.randn_like(x), *rest)


class WithOutliers(Dataset):
    """Append an auxiliary outlier input to each ``(x, y)`` sample: ``(x, y, x_outlier)``.

    Outliers are drawn uniformly at random on each access from the global torch RNG, which the
    trainer seeds, so runs repeat exactly.
    """

    def __init__(self, dataset: Dataset, outliers: Dataset) -> None:
        if len(outliers) == 0:
            raise ValueError("the outlier set is empty; point data.outliers at a dataset with samples")
        self.dataset, self.outliers = dataset, outliers

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index][:2]
        outlier = self.outliers[int(torch.randint(len(self.outliers), ()))][0]
        return x, y, outlier


def build_classifier(recipe: Recipe, num_classes: int, in_channels: int) -> ClassifierEnergy:
    """Build the recipe's network and wrap it as a :class:`ClassifierEnergy`."""
    options = {"num_classes": num_classes, "in_channels": in_channels, **recipe.model.options}
    return ClassifierEnergy(build_network(recipe.model.network, **options), temperature=recipe.model.temperature)


def build_ood_sets(recipe: Recipe, like: Dataset) -> dict[str, Dataset]:
    """Build the recipe's OOD sets; ``name:split`` picks a split, others match the data's shape."""
    sets = {}
    for entry in recipe.evaluation.ood_sets:
        name, _, split = entry.partition(":")
        options = dict(recipe.evaluation.ood_options)
        if split:
            options.update(recipe.data.options)
        else:
            options.setdefault("shape", tuple(like.input_shape))
        sets[entry] = build_dataset(name, split=split or "test", **options)
    return sets


def _train_classifier(recipe: Recipe, out: Path, resume: bool) -> tuple[ClassifierEnergy, Dataset]:
    seed_everything(recipe.train.seed)  # the network's initial weights depend on the recipe's seed
    train_set = build_dataset(recipe.data.name, split="train", **recipe.data.options)
    test_set = build_dataset(recipe.data.name, split=recipe.evaluation.split, **recipe.data.options)
    model = build_classifier(recipe, train_set.num_classes, train_set.input_shape[0])
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    if hasattr(objective, "prepare"):  # for example fitting a sampler's init on the training data
        objective.prepare(train_set)
    data = NoisyDataset(train_set, recipe.data.noise_std) if recipe.data.noise_std else train_set
    if recipe.data.outliers:
        name, _, split = recipe.data.outliers.partition(":")
        options = {"shape": tuple(train_set.input_shape), **recipe.data.outlier_options}
        data = WithOutliers(data, build_dataset(name, split=split or "train", **options))
    trainer = Trainer(model, objective, data, recipe.train, out, extra_state={"recipe": recipe.to_dict()})
    trainer.fit(resume=resume)
    return model, test_set


def evaluate_classifier(model: EnergyModel, recipe: Recipe, test_set: Dataset, out: Path,
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the recipe's evaluation on ``model`` and write the report into ``out``."""
    from .ood.evaluation import evaluate_ood, format_table, write_report

    cfg = recipe.evaluation
    device = next(model.parameters()).device
    ood_sets = build_ood_sets(recipe, test_set)
    result = evaluate_ood(model, test_set, ood_sets, cfg.scores, cfg.temperature, cfg.tpr, cfg.batch_size, cfg.ece_bins, device)
    write_report(result, out, tpr=cfg.tpr, plots=cfg.plots, extra=extra)
    table = format_table(result.metrics, cfg.tpr)
    print(table)
    return result.metrics


def _classifier_task(recipe: Recipe, out: Path, resume: bool) -> dict[str, Any]:
    model, test_set = _train_classifier(recipe, out, resume)
    return evaluate_classifier(model, recipe, test_set, out)


def evaluate_checkpoint(checkpoint: str | Path, out_dir: str | Path | None = None, device: str = "auto",
                        overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild the model of a run folder or checkpoint and evaluate it again into ``out_dir``."""
    run = Path(checkpoint)
    if run.is_dir() and not (run / "checkpoint-last.pt").exists() and (run / "recipe.json").exists():
        task = json.loads((run / "recipe.json").read_text()).get("task")
        raise ValueError(
            f"{run} is a run of task {task!r} without a checkpoint (zero-shot runs do not train); "
            "run it again with `energyview train RECIPE --out DIR --set evaluation.temperature=T`"
        )
    state = load_checkpoint(checkpoint)
    recipe_dict = state.get("extra", {}).get("recipe")
    if recipe_dict is None:
        raise ValueError(f"{checkpoint} contains no recipe; pass a checkpoint written by `energyview train`")
    for section, values in (overrides or {}).items():
        recipe_dict[section].update(values)
    recipe = recipe_from_dict(recipe_dict, f"recipe stored in {checkpoint}")
    if recipe.task not in ("classifier", "jem"):
        raise ValueError(f"`energyview ood` re-evaluates classifier and JEM runs; {checkpoint} is a {recipe.task!r} run, "
                         "so run its recipe again with `energyview train` and --set evaluation.<key>=<value>")
    test_set = build_dataset(recipe.data.name, split=recipe.evaluation.split, **recipe.data.options)
    model = build_classifier(recipe, test_set.num_classes, test_set.input_shape[0])
    model.load_state_dict(state["model"])
    model.to(resolve_device(device))
    if out_dir is not None:
        out = Path(out_dir)
    else:  # a subfolder of the run, so that the report written at training time is kept
        run = Path(checkpoint).parent if Path(checkpoint).is_file() else Path(checkpoint)
        out = run / f"ood-T{recipe.evaluation.temperature:g}"
    return evaluate_classifier(model, recipe, test_set, out)


register_task("classifier", _classifier_task)
