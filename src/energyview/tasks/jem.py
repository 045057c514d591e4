"""JEM runs: joint training with MCMC negatives, sample grids, and the JEM report.

The ``jem`` task trains a classifier energy with :class:`~energyview.objectives.JointEnergyObjective`
(or the unconditional ``ml`` objective) and evaluates it like a classifier (accuracy, ECE, OOD
table). It then draws sample grids from the final model. For datasets with a plain classifier
recipe it also writes a side-by-side comparison with that classifier trained at the same seed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data import build_dataset
from ..energies.base import EnergyModel, scoring_mode
from ..objectives import MaximumLikelihood, build_objective
from ..pipeline import NoisyDataset, build_classifier, evaluate_classifier, register_task, run_recipe
from ..recipes import Recipe, load_recipe, recipe_from_dict
from ..sampling import LangevinSampler, UniformInit
from ..training import Trainer, load_checkpoint, resolve_device, seed_everything

__all__ = ["BASELINE_RECIPES", "compare_with_classifier", "draw_samples", "sample_from_checkpoint", "train_jem", "write_sample_grids"]

log = logging.getLogger(__name__)

#: Plain classifier recipe that a JEM run on each dataset is compared with.
BASELINE_RECIPES = {"digits": "digits-classifier"}
#: Metrics of ``metrics.json`` compared side by side, and the scores whose far-OOD AUROC is shown.
COMPARED_METRICS = ("accuracy", "ece", "nll")
COMPARED_SCORES = ("energy", "msp", "max_logit")
#: Langevin steps of the sample grids; fresh chains need more steps than the persistent ones.
GRID_STEPS = 100


def train_jem(recipe: Recipe, out: Path, resume: bool = False) -> tuple[EnergyModel, MaximumLikelihood, Dataset]:
    """Train the recipe's classifier energy with its MCMC objective; return (model, objective, test set)."""
    if getattr(recipe.data, "outliers", None):
        raise ValueError(
            f"task 'jem' does not use auxiliary outliers, got data.outliers = {recipe.data.outliers!r}; "
            "remove it, or use task 'classifier' for outlier exposure"
        )
    seed_everything(recipe.train.seed)  # the network's initial weights depend on the recipe's seed
    train_set = build_dataset(recipe.data.name, split="train", **recipe.data.options)
    test_set = build_dataset(recipe.data.name, split=recipe.evaluation.split, **recipe.data.options)
    model = build_classifier(recipe, train_set.num_classes, train_set.input_shape[0])
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    if not isinstance(objective, MaximumLikelihood):
        raise ValueError(
            f"task 'jem' needs an objective with MCMC negatives ('jem' or 'ml'), got {recipe.objective.name!r}; "
            "use task 'classifier' for the other objectives"
        )
    objective.prepare(train_set)
    data = NoisyDataset(train_set, recipe.data.noise_std) if recipe.data.noise_std else train_set
    trainer = Trainer(model, objective, data, recipe.train, out, extra_state={"recipe": recipe.to_dict()})
    trainer.fit(resume=resume)
    return model, objective, test_set


def draw_samples(model: EnergyModel, objective: MaximumLikelihood, n_per_class: int, n_steps: int = GRID_STEPS,
                 conditional: bool = True, seed: int = 0, **sampler_changes: Any) -> torch.Tensor:
    """Draw ``n_per_class * K`` samples ``[N, *sample_shape]`` from the model by Langevin dynamics.

    Conditional samples (rows ordered by class) run on E(x, y) from fresh draws of the
    objective's init. Marginal samples run on F(x) from the persistent chains of the replay
    buffer when it is filled (else from the init). The objective's sampler settings apply,
    with ``n_steps`` and ``sampler_changes`` (for example ``noise_std``) replacing its values.
    The model is in eval mode while sampling and restored afterwards.
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    shape = objective.sample_shape
    if shape is None:
        raise ValueError("the objective has no sample shape yet; call objective.prepare(dataset) or train it first")
    with scoring_mode(model), torch.no_grad():
        num_classes = model.energy_matrix(torch.zeros((1, *shape), device=device)).shape[1]
    count = n_per_class * num_classes
    labels = torch.arange(num_classes, device=device).repeat_interleave(n_per_class) if conditional else None
    x0 = _initial_chains(objective, count, shape, labels, seed, device)
    config = objective.langevin_config(model, n_steps=n_steps, **sampler_changes)
    with scoring_mode(model):
        result = LangevinSampler(config)(objective.sampling_energy(model, labels), x0, model=model, generator=generator)
    return result.samples


def _initial_chains(objective: MaximumLikelihood, count: int, shape: tuple[int, ...], labels: torch.Tensor | None,
                    seed: int, device: torch.device) -> torch.Tensor:
    buffer = objective.buffer
    if labels is None and buffer is not None and buffer.filled and buffer.capacity >= count:
        generator = torch.Generator(device=buffer.device).manual_seed(seed)
        slots = torch.randperm(buffer.capacity, generator=generator, device=buffer.device)[:count]
        return buffer.get(slots).to(device)
    init = objective.init if objective.init.ready else UniformInit()
    # A fitted init draws on the device of its state, and its generator must live there too.
    init_device = next(iter(init.buffers()), torch.empty(0)).device
    generator = torch.Generator(device=init_device).manual_seed(seed)
    init_labels = None if labels is None else labels.to(init_device)
    return init.sample(count, shape, y=init_labels, generator=generator, device=init_device).to(device)


def write_sample_grids(model: EnergyModel, objective: MaximumLikelihood, out_dir: str | Path, n_per_class: int = 10,
                       n_steps: int = GRID_STEPS, seed: int = 0, value_range: tuple[float, float] = (-1.0, 1.0)) -> dict[str, Path]:
    """Write ``samples-conditional.png`` (one row per class) and ``samples-marginal.png`` into ``out_dir``."""
    from ..plots import save_sample_grid

    out = Path(out_dir)
    paths = {}
    for conditional, name in ((True, "conditional"), (False, "marginal")):
        samples = draw_samples(model, objective, n_per_class, n_steps, conditional=conditional, seed=seed)
        title = f"{'p(x | y), one row per class' if conditional else 'p(x) from the replay buffer'}, {n_steps} Langevin steps"
        paths[name] = save_sample_grid(samples, out / f"samples-{name}.png", nrow=n_per_class, value_range=value_range, title=title)
    return paths


def compare_with_classifier(recipe: Recipe, jem_metrics: dict[str, Any], out: Path,
                            baseline: str | Recipe | None = None) -> dict[str, Any] | None:
    """Write ``comparison.json`` and ``comparison.md``: the JEM run next to the plain classifier.

    The classifier recipe (default: ``BASELINE_RECIPES[recipe.data.name]``) runs with the JEM
    recipe's seed and device into ``out/baseline-classifier``, unless that folder already contains
    a ``metrics.json``. Returns the comparison, or None when the dataset has no baseline recipe.
    """
    if baseline is None:
        baseline = BASELINE_RECIPES.get(recipe.data.name)
        if baseline is None:
            log.info("no plain classifier recipe for dataset %r; skipping the comparison", recipe.data.name)
            return None
    base_dir = out / "baseline-classifier"
    base_metrics = _baseline_metrics(baseline, recipe, base_dir)
    rows = [{"metric": name, "classifier": base_metrics[name], "jem": jem_metrics[name]} for name in COMPARED_METRICS]
    for set_name in jem_metrics.get("ood", {}):
        for score in COMPARED_SCORES:
            base_value = base_metrics.get("ood", {}).get(set_name, {}).get(score, {}).get("auroc")
            jem_value = jem_metrics["ood"][set_name].get(score, {}).get("auroc")
            if base_value is not None and jem_value is not None:
                rows.append({"metric": f"auroc {set_name} ({score})", "classifier": base_value, "jem": jem_value})
    comparison = {"baseline_folder": str(base_dir), "seed": recipe.train.seed, "rows": rows}
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    lines = [f"JEM run vs plain classifier (seed {recipe.train.seed}); AUROC with OOD as the positive class.", "",
             "| metric | classifier | jem |", "|---|---:|---:|"]
    lines += [f"| {row['metric']} | {row['classifier']:.4f} | {row['jem']:.4f} |" for row in rows]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))  # last on screen, so the baseline's table is not read as JEM's
    return comparison


def _baseline_metrics(baseline: str | Recipe, recipe: Recipe, base_dir: Path) -> dict[str, Any]:
    metrics_path = base_dir / "metrics.json"
    if metrics_path.is_file():
        log.info("using the existing classifier run in %s", base_dir)
        return json.loads(metrics_path.read_text())
    base = load_recipe(baseline) if isinstance(baseline, str) else baseline
    base.train.seed = recipe.train.seed
    base.train.device = recipe.train.device
    base.train.progress = recipe.train.progress
    log.info("training the plain classifier %r into %s for the comparison", base.name, base_dir)
    return run_recipe(base, base_dir, resume=True)


def _jem_task(recipe: Recipe, out: Path, resume: bool) -> dict[str, Any]:
    start = time.perf_counter()
    model, objective, test_set = train_jem(recipe, out, resume)
    train_seconds = time.perf_counter() - start
    value_range = getattr(test_set, "data_range", (-1.0, 1.0))
    grids = write_sample_grids(model, objective, out, seed=recipe.train.seed, value_range=tuple(value_range))
    extra = {
        "train_seconds": round(train_seconds, 1),
        "sampler_implied_temperature": objective.langevin_config(model).implied_temperature,
        "sample_grids": {name: path.name for name, path in grids.items()},
    }
    metrics = evaluate_classifier(model, recipe, test_set, out, extra=extra)
    metrics.update(extra)
    compare_with_classifier(recipe, metrics, out)
    return metrics


def sample_from_checkpoint(checkpoint: str | Path, out_png: str | Path, n_per_class: int = 10, n_steps: int = GRID_STEPS,
                           step_size: float | None = None, noise_std: float | None = None, conditional: bool = True,
                           seed: int = 0, device: str = "auto") -> Path:
    """Draw a sample grid from a trained run folder or checkpoint and save it as ``out_png``.

    The model and its objective are rebuilt from the recipe stored in the checkpoint, so a
    JEM run samples with its own sampler settings, init and replay buffer. A checkpoint of a
    plain classifier samples with the default settings of
    :class:`~energyview.objectives.MaximumLikelihood` (U(-1, 1) init, η = 1, σ = 0.01, clamp to
    [-1, 1]). ``step_size`` and ``noise_std`` replace the sampler's values when given.
    Conditional grids have one row per class; marginal grids continue the buffer's chains.
    """
    state = load_checkpoint(checkpoint)
    recipe_dict = state.get("extra", {}).get("recipe")
    if recipe_dict is None:
        raise ValueError(f"{checkpoint} contains no recipe; pass a checkpoint written by `energyview train`")
    recipe = recipe_from_dict(recipe_dict, f"recipe stored in {checkpoint}")
    dataset = build_dataset(recipe.data.name, split=recipe.evaluation.split, **recipe.data.options)
    model = build_classifier(recipe, dataset.num_classes, dataset.input_shape[0])
    model.load_state_dict(state["model"])
    model.to(resolve_device(device))
    objective = _objective_for_sampling(recipe, state, dataset)
    objective.to(next(model.parameters()).device)
    changes = {key: value for key, value in (("step_size", step_size), ("noise_std", noise_std)) if value is not None}
    samples = draw_samples(model, objective, n_per_class, n_steps, conditional=conditional, seed=seed, **changes)
    from ..plots import save_sample_grid

    kind = "p(x | y), one row per class" if conditional else "p(x)"
    return save_sample_grid(samples, out_png, nrow=n_per_class, value_range=tuple(getattr(dataset, "data_range", (-1.0, 1.0))),
                            title=f"{kind}, {n_steps} Langevin steps")


def _objective_for_sampling(recipe: Recipe, state: dict[str, Any], dataset: Dataset) -> MaximumLikelihood:
    objective = build_objective(recipe.objective.name, **recipe.objective.options)
    if isinstance(objective, MaximumLikelihood):
        objective.load_state_dict(state["objective"])
        return objective
    log.info("objective %r has no sampler; sampling with the default Langevin settings", recipe.objective.name)
    return MaximumLikelihood(sample_shape=tuple(dataset.input_shape), buffer_size=1)


register_task("jem", _jem_task)
