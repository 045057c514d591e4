"""Contrastive runs: SimCLR on digits, zero-shot text topics, CLIP fine-tuning on image-caption pairs.

Tasks registered with :func:`energyview.pipeline.register_task`:

- ``simclr``: trains a one-encoder :class:`~energyview.energies.ContrastiveEnergy` with an
  in-batch objective (``simclr`` or ``supcon``) on two augmented views of each image. It then
  reports linear-probe and kNN accuracy of the frozen backbone features, also at initialisation
  as a baseline. With the class prototypes as candidates it reports nearest-prototype accuracy
  and OOD scores.
- ``zero-shot-text``: scores a sentence set against class prompts with a pretrained sentence
  encoder (no training): zero-shot accuracy and OOD metrics of energy, MSP and MCM.
- ``clip-finetune``: fine-tunes an open_clip model on image-caption pairs with the ``clip`` or
  ``siglip`` objective and reports image-text retrieval before and after.

Each writes ``metrics.json``, ``ood_table.md`` (where it scores OOD sets) and ``summary.md``
into the run folder. Under ``torchrun`` every rank trains and only rank 0 evaluates and writes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..adapters.encoders import digits_simclr_encoder, simclr_energy, timm_simclr_encoder
from ..data import build_dataset
from ..data.augment import DigitsAugment, TwoViewDataset
from ..data.text import TokenizedTextDataset
from ..energies.base import scoring_mode
from ..energies.contrastive import CandidateSet, ContrastiveEnergy, normalize_features
from ..objectives import build_objective
from ..pipeline import build_ood_sets, register_task
from ..recipes import Recipe, RecipeError
from ..training import Trainer, resolve_device, seed_everything

__all__ = [
    "KNN_NEIGHBORS",
    "build_clip_energy",
    "build_sentence_energy",
    "build_simclr_model",
    "check_contrastive_recipe",
    "class_prototypes",
    "extract_features",
    "knn_accuracy",
    "linear_probe_accuracy",
    "probe_metrics",
    "retrieval_metrics",
]

log = logging.getLogger(__name__)

#: Neighbours of the kNN classifier (cosine distance, majority vote), the usual SimCLR kNN monitor size.
KNN_NEIGHBORS = 20
#: Inverse L2 strength and iteration cap of the linear probe (scikit-learn LogisticRegression).
PROBE_C = 1.0
PROBE_MAX_ITER = 2000

_SIMCLR_MODEL_KEYS = {"projection_hidden", "projection_dim"}
_SENTENCE_MODEL_KEYS = {"path", "scale", "learn_scale", "max_length", "templates"}
_CLIP_MODEL_KEYS = {"model_name", "pretrained", "config_file", "precision"}


def _check_keys(options: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise RecipeError(f"{where}: unknown option {unknown[0]!r}; allowed options: {', '.join(sorted(allowed))}")


def _check_choice(value: str, allowed: Sequence[str], where: str) -> None:
    if value not in allowed:
        raise RecipeError(f"{where} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def check_contrastive_recipe(recipe: Recipe) -> None:
    """Check the task-specific values of a ``simclr``, ``zero-shot-text`` or ``clip-finetune`` recipe.

    Runs before anything is built or loaded, so a misspelt option fails in a second. Raises
    :class:`~energyview.recipes.RecipeError` naming the value and the allowed ones.
    """
    from ..data import list_datasets

    _check_choice(recipe.task, ("simclr", "zero-shot-text", "clip-finetune"), "task")
    _check_choice(recipe.data.name, list_datasets(), "data.name")
    options = recipe.model.options
    if recipe.task == "simclr":
        _check_choice(recipe.objective.name, ("simclr", "supcon"), "objective.name of task 'simclr'")
        if not recipe.model.network.startswith("timm:"):
            _check_choice(recipe.model.network, ("digits-cnn", "timm:<model name>"), "model.network of task 'simclr'")
            _check_keys(options, _SIMCLR_MODEL_KEYS | {"width", "activation"}, "model.options of task 'simclr'")
    elif recipe.task == "zero-shot-text":
        _check_choice(recipe.model.network, ("transformers", "sentence-transformers"), "model.network of task 'zero-shot-text'")
        _check_keys(options, _SENTENCE_MODEL_KEYS, "model.options of task 'zero-shot-text'")
    else:
        _check_choice(recipe.objective.name, ("clip", "siglip"), "objective.name of task 'clip-finetune'")
        _check_choice(recipe.model.network, ("open_clip",), "model.network of task 'clip-finetune'")
        _check_keys(options, _CLIP_MODEL_KEYS, "model.options of task 'clip-finetune'")
        if "model_name" not in options:
            raise RecipeError("model.options.model_name is missing; name an open_clip model such as ViT-B-32")


# ---------------------------------------------------------------------------------------------
# Features, probes and prototypes
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def extract_features(fn: Any, model: torch.nn.Module, dataset: Dataset, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(fn(x) for every x, labels)`` as ``[N, F]`` float32 on the CPU and ``[N]``, in eval mode."""
    features, labels = [], []
    with scoring_mode(model):
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            features.append(fn(x.to(device) if isinstance(x, torch.Tensor) else x).float().cpu())
            labels.append(torch.as_tensor(y))
    return torch.cat(features), torch.cat(labels)


def linear_probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray,
                          test_features: np.ndarray, test_labels: np.ndarray) -> float:
    """Return the test accuracy of a logistic regression fitted on standardised frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_features)
    probe = LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER).fit(scaler.transform(train_features), train_labels)
    return float(probe.score(scaler.transform(test_features), test_labels))


def knn_accuracy(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray, neighbors: int = KNN_NEIGHBORS) -> float:
    """Return the test accuracy of a cosine-distance kNN vote over the training features."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=neighbors, metric="cosine").fit(train_features, train_labels)
    return float(knn.score(test_features, test_labels))


def probe_metrics(model: ContrastiveEnergy, train_set: Dataset, test_set: Dataset, batch_size: int = 256,
                  device: torch.device | str = "cpu") -> dict[str, float]:
    """Return linear-probe and kNN accuracy of the backbone features ``model.encoder_x.features``."""
    features = model.encoder_x.features
    f_train, y_train = extract_features(features, model, train_set, batch_size, device)
    f_test, y_test = extract_features(features, model, test_set, batch_size, device)
    arrays = (f_train.numpy(), y_train.numpy(), f_test.numpy(), y_test.numpy())
    return {"linear_probe_accuracy": linear_probe_accuracy(*arrays), "knn_accuracy": knn_accuracy(*arrays)}


def class_prototypes(model: ContrastiveEnergy, dataset: Dataset, num_classes: int, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> CandidateSet:
    """Return the normalised mean of the unit embeddings g(x) of each class, as a ``[K, D]`` candidate set."""
    embeddings, labels = extract_features(model.encode_x, model, dataset, batch_size, device)
    counts = torch.bincount(labels, minlength=num_classes)
    if bool((counts == 0).any()):
        raise ValueError(f"class {int((counts == 0).nonzero()[0])} has no sample in the data set; prototypes need every class")
    sums = torch.zeros(num_classes, embeddings.shape[1]).index_add_(0, labels, embeddings)
    return CandidateSet(normalize_features(sums / counts.unsqueeze(1)), names=[str(k) for k in range(num_classes)])


# ---------------------------------------------------------------------------------------------
# simclr
# ---------------------------------------------------------------------------------------------


def build_simclr_model(recipe: Recipe, in_channels: int, tau: float) -> ContrastiveEnergy:
    """Build ``model.network`` (``digits-cnn`` or ``timm:<name>``) with a projection head, at scale 1 / tau."""
    check_contrastive_recipe(recipe)
    network, options = recipe.model.network, dict(recipe.model.options)
    if network.startswith("timm:"):
        encoder = timm_simclr_encoder(network[len("timm:"):], in_channels=in_channels, **options)
    else:
        encoder = digits_simclr_encoder(in_channels=in_channels, **options)
    return simclr_energy(encoder, tau=tau, temperature=recipe.model.temperature)


def _simclr_data(recipe: Recipe) -> tuple[Dataset, Dataset, DigitsAugment]:
    options = dict(recipe.data.options)
    augment = options.pop("augment", {}) or {}
    if not isinstance(augment, dict):
        raise RecipeError(f"data.options.augment must be a mapping of DigitsAugment options, got {augment!r}")
    train_set = build_dataset(recipe.data.name, split="train", **options)
    test_set = build_dataset(recipe.data.name, split=recipe.evaluation.split, **options)
    try:
        transform = DigitsAugment(**augment)
    except TypeError as error:
        raise RecipeError(f"data.options.augment: {error}") from error
    return train_set, test_set, transform


def _simclr_task(recipe: Recipe, out: Path, resume: bool) -> dict[str, Any]:
    check_contrastive_recipe(recipe)
    train_set, test_set, transform = _simclr_data(recipe)
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    seed_everything(recipe.train.seed)  # the initial weights, and so the baseline, follow from the seed
    model = build_simclr_model(recipe, train_set.input_shape[0], tau=objective.temperature)
    trainer = Trainer(model, objective, TwoViewDataset(train_set, transform), recipe.train, out,
                      extra_state={"recipe": recipe.to_dict()})
    batch, device = recipe.evaluation.batch_size, trainer.device
    baseline = probe_metrics(model, train_set, test_set, batch, device) if trainer.is_main else {}
    started = time.perf_counter()
    trainer.fit(resume=resume)
    seconds = time.perf_counter() - started
    if not trainer.is_main:
        return {}
    extra = {**probe_metrics(model, train_set, test_set, batch, device),
             **{f"{k}_at_init": v for k, v in baseline.items()}, "train_seconds": round(seconds, 1)}
    model.set_candidates(class_prototypes(model, train_set, train_set.num_classes, batch, device))
    metrics = _evaluate(model, recipe, test_set, build_ood_sets(recipe, test_set), out, extra, device)
    _write_summary(out, "SimCLR on " + recipe.data.name, metrics, _SIMCLR_ROWS)
    return metrics


_SIMCLR_ROWS = (
    ("linear_probe_accuracy", "linear probe accuracy (backbone features, logistic regression)"),
    ("linear_probe_accuracy_at_init", "linear probe accuracy at initialisation"),
    ("knn_accuracy", f"kNN accuracy (k = {KNN_NEIGHBORS}, cosine)"),
    ("knn_accuracy_at_init", "kNN accuracy at initialisation"),
    ("accuracy", "nearest-prototype accuracy (argmin energy)"),
    ("train_seconds", "training time (s)"),
)


# ---------------------------------------------------------------------------------------------
# zero-shot-text
# ---------------------------------------------------------------------------------------------


def build_sentence_energy(recipe: Recipe, device: torch.device | str = "cpu") -> tuple[ContrastiveEnergy, list[str]]:
    """Build the sentence encoder of ``model.network`` (``transformers`` or ``sentence-transformers``); return it and the templates."""
    from ..adapters.sentence import MINILM_SCALE, sentence_energy
    from ..ood.zero_shot import DEFAULT_TEXT_TEMPLATES

    check_contrastive_recipe(recipe)
    options = dict(recipe.model.options)
    templates = list(options.pop("templates", DEFAULT_TEXT_TEMPLATES))
    model = sentence_energy(
        options.pop("path", None), backend=recipe.model.network, scale=options.pop("scale", MINILM_SCALE),
        temperature=recipe.model.temperature, device=device, **options,
    )
    return model, templates


def _zero_shot_text_task(recipe: Recipe, out: Path, resume: bool) -> dict[str, Any]:
    from ..ood.zero_shot import set_zero_shot_classes

    device = resolve_device(recipe.train.device)
    model, templates = build_sentence_energy(recipe, device)
    log.info("task 'zero-shot-text' does not train: the train and objective sections are not used")
    dataset = build_dataset(recipe.data.name, split=recipe.evaluation.split, **recipe.data.options)
    if not dataset.classes:
        raise RecipeError(f"data set {recipe.data.name!r} split {recipe.evaluation.split!r} has no class names to build prompts from")
    set_zero_shot_classes(model, dataset.classes, templates)
    tokenize = model.encoder_x.tokenize
    ood_sets = {name: TokenizedTextDataset(s, tokenize) for name, s in build_ood_sets(recipe, dataset).items()}
    extra = {"templates": templates, "classes": list(dataset.classes)}
    metrics = _evaluate(model, recipe, TokenizedTextDataset(dataset, tokenize), ood_sets, out, extra, device)
    _write_summary(out, "Zero-shot topics of " + recipe.data.name, metrics, (("accuracy", "zero-shot accuracy (argmin energy)"),))
    return metrics


# ---------------------------------------------------------------------------------------------
# clip-finetune
# ---------------------------------------------------------------------------------------------


def build_clip_energy(recipe: Recipe, device: torch.device | str = "cpu") -> ContrastiveEnergy:
    """Build the open_clip model of ``model.options`` (``model_name``, ``pretrained``, ``config_file``, ``precision``)."""
    from ..adapters.open_clip import open_clip_energy

    check_contrastive_recipe(recipe)
    options = dict(recipe.model.options)
    return open_clip_energy(options.pop("model_name"), options.pop("pretrained", None), temperature=recipe.model.temperature,
                            device=device, **options)


@torch.no_grad()
def retrieval_metrics(model: ContrastiveEnergy, dataset: Dataset, batch_size: int = 256,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Return top-1 image-to-text and text-to-image retrieval accuracy over the whole ``(image, caption)`` set.

    Pair i is a hit when its own caption (image) has the lowest energy among all N captions (images).
    """
    images, texts = [], []
    with scoring_mode(model):
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            images.append(model.encode_x(x.to(device)).float().cpu())
            texts.append(model.encode_y(list(y)).float().cpu())
    cosine = torch.cat(images) @ torch.cat(texts).T  # [N, N]
    target = torch.arange(cosine.shape[0])
    return {
        "image_to_text_top1": float((cosine.argmax(dim=1) == target).float().mean()),
        "text_to_image_top1": float((cosine.argmax(dim=0) == target).float().mean()),
        "mean_positive_cosine": float(cosine.diagonal().mean()),
    }


def _clip_finetune_task(recipe: Recipe, out: Path, resume: bool) -> dict[str, Any]:
    seed_everything(recipe.train.seed)
    model = build_clip_energy(recipe, resolve_device(recipe.train.device))
    tower = model.encoder_x
    train_set = build_dataset(recipe.data.name, split="train", transform=tower.preprocess_train, **recipe.data.options)
    test_set = build_dataset(recipe.data.name, split=recipe.evaluation.split, transform=tower.preprocess, **recipe.data.options)
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    trainer = Trainer(model, objective, train_set, recipe.train, out, extra_state={"recipe": recipe.to_dict()})
    batch, device = recipe.evaluation.batch_size, trainer.device
    before = retrieval_metrics(model, test_set, batch, device) if trainer.is_main else {}
    started = time.perf_counter()
    trainer.fit(resume=resume)
    if not trainer.is_main:
        return {}
    metrics = {**retrieval_metrics(model, test_set, batch, device), **{f"{k}_before": v for k, v in before.items()},
               "scale": float(model.scale.detach()), "train_seconds": round(time.perf_counter() - started, 1)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_summary(out, "CLIP fine-tuning on " + recipe.data.name, metrics, tuple((k, k) for k in metrics))
    return metrics


# ---------------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------------


def _evaluate(model: ContrastiveEnergy, recipe: Recipe, test_set: Dataset, ood_sets: Mapping[str, Dataset], out: Path,
              extra: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Run :func:`~energyview.ood.evaluation.evaluate_ood` and write its report with ``extra`` in ``metrics.json``."""
    from ..ood.evaluation import evaluate_ood, format_table, write_report

    cfg = recipe.evaluation
    result = evaluate_ood(model, test_set, ood_sets, cfg.scores, cfg.temperature, cfg.tpr, cfg.batch_size, cfg.ece_bins, device)
    write_report(result, out, tpr=cfg.tpr, plots=cfg.plots, extra=extra)
    log.info("OOD evaluation:\n%s", format_table(result.metrics, cfg.tpr))
    return {**result.metrics, **extra}


def _write_summary(out: Path, title: str, metrics: Mapping[str, Any], rows: Sequence[tuple[str, str]]) -> Path:
    """Write ``summary.md``: a table of the named metrics, then the OOD table when there is one."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---:|"]
    for key, label in rows:
        if key in metrics:
            lines.append(f"| {label} | {_format_value(key, metrics[key])} |")
    table = out / "ood_table.md"
    if table.exists():
        lines += ["", table.read_text().rstrip()]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _format_value(key: str, value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.1f}" if key.endswith("seconds") else f"{value:.4f}"


register_task("simclr", _simclr_task)
register_task("zero-shot-text", _zero_shot_text_task)
register_task("clip-finetune", _clip_finetune_task)
