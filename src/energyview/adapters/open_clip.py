"""open_clip models (CLIP, and SigLIP variants with a logit bias) as contrastive energies.

open_clip is imported inside the functions, because importing it takes seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from ..energies.contrastive import ContrastiveEnergy

__all__ = ["OpenCLIPImageTower", "OpenCLIPParts", "OpenCLIPTextTower", "load_open_clip", "open_clip_energy"]

logger = logging.getLogger(__name__)


class OpenCLIPParts(NamedTuple):
    """The parts of an open_clip model that :func:`load_open_clip` returns: model, image transforms, tokenizer."""

    model: nn.Module
    preprocess_train: Callable[[Any], torch.Tensor]
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]


class OpenCLIPImageTower(nn.Module):
    """``forward(images [B, 3, H, W]) = model.encode_image(images)``.

    ``preprocess`` (eval) and ``preprocess_train`` (with open_clip's training augmentation)
    turn a PIL image into one such input ``[3, H, W]``.
    """

    def __init__(self, model: nn.Module, preprocess: Callable[[Any], torch.Tensor] | None = None,
                 preprocess_train: Callable[[Any], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.preprocess = preprocess
        self.preprocess_train = preprocess_train if preprocess_train is not None else preprocess

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(
                f"the image tower takes a float tensor [B, 3, H, W], got {type(images).__name__}; "
                "apply the tower's preprocess to each PIL image and stack the results"
            )
        return self.model.encode_image(images)


class OpenCLIPTextTower(nn.Module):
    """``forward(texts) = model.encode_text(tokenizer(texts))`` for a string, a list of strings or token ids ``[B, L]``."""

    def __init__(self, model: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    def forward(self, texts: str | list[str] | torch.Tensor) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, (list, tuple)):
            ids = self.tokenizer(list(texts))
        elif isinstance(texts, torch.Tensor) and not texts.is_floating_point():
            ids = texts
        else:
            raise TypeError(f"the text tower takes strings or integer token ids [B, L], got {type(texts).__name__}")
        device = next(self.model.parameters()).device
        return self.model.encode_text(ids.to(device))


def load_open_clip(
    model_name: str,
    pretrained: str | None = None,
    *,
    config_file: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    **kwargs: Any,
) -> OpenCLIPParts:
    """Create an open_clip model with its transforms and tokenizer, as :class:`OpenCLIPParts`.

    Args:
        model_name: an open_clip architecture (``"ViT-B-32"``), a ``"local-dir:/path"`` folder with
            ``open_clip_config.json`` and weights, or the name of the model in ``config_file``.
        pretrained: a pretrained tag (``"laion2b_s34b_b79k"``; open_clip downloads it unless the
            Hugging Face cache has it) or a local checkpoint file (``"/path/model.pt"``).
            ``None`` gives random weights.
        config_file: a JSON model config with the keys ``embed_dim``, ``vision_cfg`` and
            ``text_cfg``. It is registered first with ``open_clip.add_model_config`` under its
            file stem, which ``model_name`` must equal. Small test models build this way.
        device, precision: passed to ``open_clip.create_model_and_transforms``.
        kwargs: further options for ``create_model_and_transforms``.
    """
    import open_clip  # imported here: open_clip takes seconds to import

    if config_file is not None:
        _register_config(open_clip, Path(config_file), model_name)
    if pretrained is not None and os.sep in str(pretrained) and not os.path.isfile(pretrained):
        raise FileNotFoundError(f"pretrained checkpoint {pretrained!r} does not exist; pass a file path or a pretrained tag")
    known = open_clip.list_models()
    if not model_name.startswith(("local-dir:", "hf-hub:")) and model_name not in known:
        close = [name for name in known if model_name.lower() in name.lower()][:5]
        raise ValueError(f"unknown open_clip model {model_name!r}; similar names: {close or 'none'}; or pass config_file=<json>")
    model, preprocess_train, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=pretrained, device=device, precision=precision, **kwargs
    )
    return OpenCLIPParts(model, preprocess_train, preprocess, open_clip.get_tokenizer(model_name))


def _register_config(open_clip: Any, path: Path, model_name: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"open_clip config file {str(path)!r} does not exist")
    if path.stem != model_name:
        raise ValueError(f"model_name {model_name!r} must equal the config file stem {path.stem!r}; open_clip registers configs by stem")
    open_clip.add_model_config(path)
    if model_name not in open_clip.list_models():
        raise ValueError(f"{str(path)!r} is not an open_clip model config: it needs the keys embed_dim, vision_cfg and text_cfg")


def open_clip_energy(
    model_name: str,
    pretrained: str | None = None,
    *,
    config_file: str | os.PathLike | None = None,
    temperature: float = 1.0,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> ContrastiveEnergy:
    """Return an open_clip model as a two-tower :class:`ContrastiveEnergy`.

    x are images ``[B, 3, H, W]``, transformed with ``energy.encoder_x.preprocess``;
    y are strings or token ids. The energy shares the model's ``logit_scale`` parameter
    (and ``logit_bias`` when the model has one, as open_clip's SigLIP models do):
    E = -(min(exp(logit_scale), 100) * cos + logit_bias), equal to minus open_clip's logits
    ``logit_scale.exp() * image_features @ text_features.T (+ logit_bias)`` while
    logit_scale <= ln 100. Arguments are those of :func:`load_open_clip`.
    """
    parts = load_open_clip(model_name, pretrained, config_file=config_file, device=device, **kwargs)
    model = parts.model
    bias = getattr(model, "logit_bias", None)
    return ContrastiveEnergy(
        OpenCLIPImageTower(model, parts.preprocess, parts.preprocess_train),
        OpenCLIPTextTower(model, parts.tokenizer),
        log_scale=model.logit_scale,
        bias=bias if isinstance(bias, nn.Parameter) else None,
        temperature=temperature,
    )
