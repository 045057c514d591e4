"""Text data sets: the shipped topic sentences, token-id views of text sets, and image-caption pairs.

``text-topics`` is a set of 160 short English sentences written for energyview, 32 on each of
five topics (sports, cooking, astronomy, finance, gardening), plus 40 sentences on two other
topics (music, medicine) for OOD tests. The file is ``data/text/topics.jsonl``, one JSON object
per line with the keys ``text``, ``topic`` and ``split`` (``"in"`` or ``"ood"``).
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from .registry import OOD_LABEL, check_split, register_dataset

__all__ = [
    "TOPICS_FILE",
    "ImageCaptionDataset",
    "TextDataset",
    "TokenizedTextDataset",
    "make_image_captions",
    "make_text_topics",
]

#: The shipped sentence set.
TOPICS_FILE = Path(__file__).resolve().parent / "text" / "topics.jsonl"


class TextDataset(Dataset):
    """Sentences with labels: item ``i`` is ``(texts[i], labels[i])``, the label a 0-dim int64 tensor.

    ``num_classes`` is ``None`` for an OOD set (every label -1); ``input_shape`` and
    ``data_range`` are ``None`` because the inputs are strings. ``topics[i]`` is the topic name
    of sentence ``i``, also for OOD sentences.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[int], classes: Sequence[str] | None, topics: Sequence[str]) -> None:
        if not (len(texts) == len(labels) == len(topics)):
            raise ValueError(f"texts, labels and topics must have one length, got {len(texts)}, {len(labels)}, {len(topics)}")
        self.texts = list(texts)
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self.classes = None if classes is None else tuple(classes)
        self.num_classes = None if classes is None else len(self.classes)
        self.topics = tuple(topics)
        self.input_shape = None
        self.data_range = None

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        return self.texts[index], self.labels[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={len(self)}, classes={self.classes})"


@functools.lru_cache(maxsize=4)
def _read_topics(path: str) -> tuple[dict[str, Any], ...]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"text", "topic", "split"} - set(row)
            if missing or row["split"] not in ("in", "ood"):
                raise ValueError(f"{path}:{number} needs keys text, topic and split ('in' or 'ood'), got {row}")
            rows.append(row)
    return tuple(rows)


def make_text_topics(split: str = "all", path: str | Path | None = None) -> TextDataset:
    """Build ``text-topics``: ``"all"`` gives the 160 in-distribution sentences, ``"ood"`` the 40 others.

    Class labels follow the order in which the topics first appear in the file (sports 0,
    cooking 1, astronomy 2, finance 3, gardening 4 in the shipped file), and ``classes`` contains
    the names. OOD sentences get label -1.

    Example:
        >>> topics = make_text_topics("all")
        >>> len(topics), topics.classes
        (160, ('sports', 'cooking', 'astronomy', 'finance', 'gardening'))
        >>> len(make_text_topics("ood")), make_text_topics("ood").num_classes
        (40, None)
    """
    check_split(split, ("all", "ood"), "text-topics")
    rows = _read_topics(str(path or TOPICS_FILE))
    classes = list(dict.fromkeys(row["topic"] for row in rows if row["split"] == "in"))
    if split == "ood":
        chosen = [row for row in rows if row["split"] == "ood"]
        return TextDataset([r["text"] for r in chosen], [OOD_LABEL] * len(chosen), None, [r["topic"] for r in chosen])
    chosen = [row for row in rows if row["split"] == "in"]
    labels = [classes.index(r["topic"]) for r in chosen]
    return TextDataset([r["text"] for r in chosen], labels, classes, [r["topic"] for r in chosen])


class TokenizedTextDataset(Dataset):
    """A text data set with each sentence replaced by its token ids ``[L]``, one length for all.

    Code that moves batches with ``x.to(device)`` (such as
    :func:`energyview.ood.evaluation.evaluate_ood`) needs tensors, not strings. ``tokenize``
    maps all sentences at once to ``[N, L]`` ids padded to one length, for example
    ``MeanPoolingEncoder.tokenize``. The sentence encoders rebuild the attention mask from the
    padding id.
    """

    def __init__(self, dataset: TextDataset, tokenize: Callable[[list[str]], torch.Tensor]) -> None:
        ids = tokenize(list(dataset.texts))
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] != len(dataset):
            found = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"tokenize must return token ids [N={len(dataset)}, L], got {found}")
        self.ids = ids.long()
        self.labels = dataset.labels
        for name in ("classes", "num_classes", "topics", "data_range"):
            setattr(self, name, getattr(dataset, name, None))
        self.input_shape = (int(ids.shape[1]),)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ids[index], self.labels[index]


class ImageCaptionDataset(Dataset):
    """Image-caption pairs from a CSV file: item ``i`` is ``(transform(image_i), caption_i)``.

    Image paths in the CSV are relative to the CSV's folder unless absolute. Batches collate
    to an image tensor ``[B, 3, H, W]`` and a list of B captions, the ``(x, y)`` layout of
    :class:`~energyview.objectives.CLIPObjective`.
    """

    def __init__(self, csv_path: str | Path, transform: Callable[[Any], torch.Tensor] | None = None,
                 image_column: str = "image", caption_column: str = "caption") -> None:
        self.csv_path = Path(csv_path)
        if not self.csv_path.is_file():
            raise FileNotFoundError(f"caption file {str(self.csv_path)!r} does not exist; write a CSV with columns {image_column},{caption_column}")
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {image_column, caption_column} <= set(reader.fieldnames):
                raise ValueError(f"{self.csv_path} must have the columns {image_column!r} and {caption_column!r}, got {reader.fieldnames}")
            rows = [(row[image_column], row[caption_column]) for row in reader]
        if not rows:
            raise ValueError(f"{self.csv_path} has no rows")
        self.images = [self._resolve(image) for image, _ in rows]
        self.captions = [caption for _, caption in rows]
        self.transform = transform
        self.num_classes = None
        self.input_shape = None
        self.data_range = None

    def _resolve(self, image: str) -> Path:
        path = Path(image)
        return path if path.is_absolute() else self.csv_path.parent / path

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        from PIL import Image

        with Image.open(self.images[index]) as image:
            image = image.convert("RGB")
            if self.transform is not None:
                return self.transform(image), self.captions[index]
            from torchvision.transforms.functional import to_tensor

            return to_tensor(image), self.captions[index]


def make_image_captions(split: str = "train", root: str | Path = ".", transform: Callable[[Any], torch.Tensor] | None = None,
                        image_column: str = "image", caption_column: str = "caption") -> ImageCaptionDataset:
    """Build ``image-captions`` from ``root/<split>.csv`` (for example ``train.csv`` and ``test.csv``).

    Without ``transform`` images become float tensors in [0, 1]; CLIP models need their own
    preprocess (``energy.encoder_x.preprocess`` of :func:`energyview.adapters.open_clip_energy`).
    """
    if not isinstance(split, str) or not split or "/" in split:
        raise ValueError(f"split must be a file stem such as 'train' or 'test', got {split!r}")
    return ImageCaptionDataset(Path(root) / f"{split}.csv", transform, image_column, caption_column)


register_dataset("text-topics", make_text_topics)
register_dataset("image-captions", make_image_captions)
