"""Zero-shot classification and OOD scores of contrastive models through class prompts.

Class names become prompts ("This sentence is about {}."), and the prompts become a candidate
set of embeddings. The model's energies against that set are conditional energies E(x, class).
The zero-shot prediction is argmin_k E(x, k), and the energy matrix feeds the same OOD scores
and evaluation as a classifier's. With several templates per class, the class embedding is the
normalised mean of the normalised prompt embeddings (prompt ensembling, Radford et al. 2021).

This module registers the OOD score ``mcm`` (Maximum Concept Matching, Ming et al. 2022,
"Delving into Out-of-Distribution Detection with Vision-Language Representations"):

    MCM(x) = max_k softmax_k(cos(g(x), h(y_k)) / T),

the maximum softmax of the cosine similarities to the class embeddings at temperature T (the
evaluation temperature; MCM's paper uses T = 1). Higher MCM means more in-distribution. In
energy terms MCM is MSP at temperature T * tau, because -E / (T * scale) = cos / T when the
model has no bias; it needs the cosines, so it is an input score that calls
``model.cosine_matrix(x)``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from torch import nn

from ..energies.base import check_temperature, scoring_mode
from ..energies.contrastive import CandidateSet, ContrastiveEnergy, normalize_features
from .scores import OODScore, register_score

__all__ = [
    "DEFAULT_TEXT_TEMPLATES",
    "class_prompts",
    "mcm_score",
    "prompt_candidates",
    "set_zero_shot_classes",
    "zero_shot_predict",
]

#: Prompt templates for topic classification of sentences; every ``{}`` is replaced by the class name.
DEFAULT_TEXT_TEMPLATES = ("This sentence is about {}.",)


def class_prompts(class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEXT_TEMPLATES) -> list[list[str]]:
    """Return one list of prompts per class: each template with every ``{}`` replaced by the class name.

    Example:
        >>> class_prompts(["sports", "cooking"], ["a text about {}.", "{} news"])
        [['a text about sports.', 'sports news'], ['a text about cooking.', 'cooking news']]
    """
    if isinstance(class_names, str) or not class_names:
        raise ValueError(f"class_names must be a non-empty list of names, got {class_names!r}")
    if isinstance(templates, str) or not templates:
        raise ValueError(f"templates must be a non-empty list of strings with a '{{}}', got {templates!r}")
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"template {template!r} has no '{{}}' to put the class name in")
    return [[template.replace("{}", str(name)) for template in templates] for name in class_names]


@torch.no_grad()
def prompt_candidates(
    model: ContrastiveEnergy, class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEXT_TEMPLATES
) -> CandidateSet:
    """Encode the prompts of each class and return one unit embedding per class, ``[K, D]``.

    Each class embedding is the normalised mean of its normalised prompt embeddings.
    """
    prompts = class_prompts(class_names, templates)
    flat = [prompt for group in prompts for prompt in group]
    embeddings = model.encode_candidates(flat).embeddings  # [K * T, D], unit rows
    per_class = embeddings.view(len(prompts), len(templates), -1).mean(dim=1)  # [K, D]
    return CandidateSet(normalize_features(per_class), names=list(class_names))


def set_zero_shot_classes(
    model: ContrastiveEnergy, class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEXT_TEMPLATES
) -> ContrastiveEnergy:
    """Store the class-prompt embeddings as ``model``'s candidate set and return ``model``.

    Afterwards ``model.energy_matrix(x)`` is ``[B, K]`` over the classes in ``class_names``
    order, so the model works wherever a classifier energy does (accuracy, OOD scores,
    :func:`energyview.ood.evaluation.evaluate_ood`).
    """
    return model.set_candidates(prompt_candidates(model, class_names, templates))


@torch.no_grad()
def zero_shot_predict(model: ContrastiveEnergy, x: Any, candidates: Any = None) -> torch.Tensor:
    """Return argmin_k E(x_i, y_k), the zero-shot class of each input, as ``[B]`` int64.

    Example:
        >>> from torch import nn
        >>> model = ContrastiveEnergy(nn.Identity()).set_candidates(CandidateSet(torch.eye(2)))
        >>> zero_shot_predict(model, torch.tensor([[0.1, 2.0], [3.0, 0.0]]))
        tensor([1, 0])
    """
    with scoring_mode(model):
        return model.energy_matrix(x, candidates).argmin(dim=1)


def mcm_score(model: Any, x: Any, temperature: float = 1.0) -> torch.Tensor:
    """Return MCM(x) = max_k softmax_k(cos(x, y_k) / T) over the stored candidates, as ``[B]``.

    Higher means more in-distribution. ``model`` needs ``cosine_matrix(x)`` (a
    :class:`ContrastiveEnergy` with candidates set).

    Example:
        >>> from torch import nn
        >>> model = ContrastiveEnergy(nn.Identity()).set_candidates(CandidateSet(torch.eye(2)))
        >>> mcm_score(model, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        tensor([0.7311, 0.5000])
    """
    t = check_temperature(temperature)
    cosine_matrix = getattr(model, "cosine_matrix", None)
    if not callable(cosine_matrix):
        raise TypeError(
            f"the mcm score needs a contrastive model with cosine_matrix(x), got {type(model).__name__}; "
            "use msp for classifiers"
        )
    mode = scoring_mode(model) if isinstance(model, nn.Module) else contextlib.nullcontext()
    with torch.no_grad(), mode:
        cosine = cosine_matrix(x).float()  # [B, K]
    return torch.softmax(cosine / t, dim=1).amax(dim=1)


register_score(
    OODScore(
        "mcm",
        higher_is_ood=False,
        fn=mcm_score,
        needs_input=True,
        description="maximum softmax of cosine similarities to the class prompts at T (Ming et al. 2022)",
    )
)
