"""Hugging Face ``CLIPModel`` and ``SiglipModel`` as contrastive energies.

transformers is imported inside the functions, because importing it takes seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..energies.contrastive import ContrastiveEnergy

__all__ = ["HFImageTower", "HFTextTower", "hf_clip_energy", "load_hf_clip"]

logger = logging.getLogger(__name__)


def _pooled(output: Any) -> torch.Tensor:
    """Return the projected features: transformers 4 returns a tensor, 5 a ModelOutput with ``pooler_output``."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(f"expected features or an output with pooler_output, got {type(output).__name__}")
    return pooled


class HFImageTower(nn.Module):
    """``forward(pixel_values [B, 3, H, W])`` returns ``model.get_image_features(pixel_values)`` as ``[B, D]``.

    A dict (an image processor's output) is passed as keyword arguments.
    """

    def __init__(self, model: nn.Module, image_processor: Any = None) -> None:
        super().__init__()
        self.model = model
        self.image_processor = image_processor

    def forward(self, pixel_values: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(pixel_values, dict):
            return _pooled(self.model.get_image_features(**pixel_values))
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"the image tower takes pixel_values [B, 3, H, W] or an image processor's output, got {type(pixel_values).__name__}"
            )
        return _pooled(self.model.get_image_features(pixel_values=pixel_values))


class HFTextTower(nn.Module):
    """``forward(texts)`` returns ``model.get_text_features(...)`` as ``[B, D]``.

    ``texts`` is a list of strings (tokenized with ``tokenizer`` and padded per ``padding``),
    a tokenizer output dict, or integer ``input_ids`` ``[B, L]``.
    """

    def __init__(self, model: nn.Module, tokenizer: Any = None, padding: str | bool = True, max_length: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.padding = padding
        self.max_length = max_length

    def forward(self, texts: str | list[str] | dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        inputs = _text_inputs(texts, self.tokenizer, self.padding, self.max_length)
        return _pooled(self.model.get_text_features(**{k: v.to(device) for k, v in inputs.items()}))


def _text_inputs(texts: Any, tokenizer: Any, padding: str | bool, max_length: int | None) -> dict[str, torch.Tensor]:
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, (list, tuple)):
        if tokenizer is None:
            raise ValueError(
                "this model was loaded without a tokenizer, so it cannot encode strings; save the tokenizer next to "
                "the model (tokenizer.save_pretrained(dir)) or pass input_ids"
            )
        encoded = tokenizer(list(texts), padding=padding, truncation=True, max_length=max_length, return_tensors="pt")
        return {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
    if isinstance(texts, torch.Tensor) and not texts.is_floating_point() and texts.dim() == 2:
        return {"input_ids": texts}
    if isinstance(texts, dict) or hasattr(texts, "keys"):
        return {k: texts[k] for k in ("input_ids", "attention_mask") if k in texts}
    raise TypeError(f"the text tower takes strings, a tokenizer output or input_ids [B, L], got {type(texts).__name__}")


def load_hf_clip(path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs: Any) -> tuple[nn.Module, Any, Any]:
    """Load ``(model, tokenizer, image_processor)`` from a folder written by ``save_pretrained``.

    The model class comes from the saved config (``CLIPModel``, ``SiglipModel`` and other
    models with ``get_image_features``, ``get_text_features`` and ``logit_scale``). The
    tokenizer and image processor are ``None`` when the folder has no files for them.
    """
    import transformers  # imported here: transformers takes seconds to import

    try:
        model = transformers.AutoModel.from_pretrained(str(path), **kwargs)
    except OSError as error:
        raise OSError(
            f"could not load a model from {str(path)!r}: {error}. Point at a folder written by save_pretrained; "
            "with HF_HUB_OFFLINE=1 hub ids load only from the local cache"
        ) from error
    missing = [name for name in ("get_image_features", "get_text_features", "logit_scale") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"{type(model).__name__} from {str(path)!r} is not a CLIP-like model: it has no {', '.join(missing)}")
    tokenizer = _optional(transformers.AutoTokenizer, path, ("tokenizer_config.json", "tokenizer.json"))
    image_processor = _optional(transformers.AutoImageProcessor, path, ("preprocessor_config.json",))
    return model.to(device), tokenizer, image_processor


def _optional(auto_class: Any, path: str | os.PathLike, files: tuple[str, ...]) -> Any:
    # transformers 5.25 builds an empty CLIPTokenizer (2 tokens) from a folder without tokenizer
    # files instead of raising, so a local folder must contain one of ``files``.
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in files):
        logger.info("no %s files (%s) in %s; continuing without it", auto_class.__name__, ", ".join(files), folder)
        return None
    try:
        return auto_class.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as error:
        logger.info("no %s in %s (%s); continuing without it", auto_class.__name__, path, error)
        return None


def hf_clip_energy(
    path: str | os.PathLike,
    *,
    temperature: float = 1.0,
    padding: str | bool | None = None,
    max_length: int | None = None,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> ContrastiveEnergy:
    """Return a saved ``CLIPModel`` or ``SiglipModel`` as a two-tower :class:`ContrastiveEnergy`.

    x are ``pixel_values``; y are strings, a tokenizer output or ``input_ids``. The energy
    shares the model's ``logit_scale`` and, for SigLIP, ``logit_bias``:

    - CLIP: E = -min(exp(logit_scale), 100) * cos = -logits_per_image (while logit_scale <= ln 100).
    - SigLIP: E = -(exp(logit_scale) * cos + logit_bias) = -logits_per_image. SigLIP's own
      probability of a pair is sigmoid(-E) (:meth:`ContrastiveEnergy.match_probability`). The
      softmax p(y | x) = softmax(-E / T) over a candidate set ignores the bias, and the free
      energy is shifted by it: F(x) = -T logsumexp(scale * cos / T) - bias.

    ``padding`` defaults to ``"max_length"`` for SigLIP (its text tower was trained on
    max-length padding) and to ``True`` (longest in the batch) otherwise.
    """
    model, tokenizer, image_processor = load_hf_clip(path, device=device, **kwargs)
    bias = getattr(model, "logit_bias", None)
    is_sigmoid = isinstance(bias, nn.Parameter)
    if padding is None:
        padding = "max_length" if is_sigmoid else True
    return ContrastiveEnergy(
        HFImageTower(model, image_processor),
        HFTextTower(model, tokenizer, padding=padding, max_length=max_length),
        log_scale=model.logit_scale,
        bias=bias if is_sigmoid else None,
        temperature=temperature,
    )
