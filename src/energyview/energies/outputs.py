"""Find the logits or embeddings inside whatever a wrapped network returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Sequence, Union

import torch

__all__ = ["OutputSelector", "select_output"]

#: How to point at a tensor inside a network's output: a key or attribute name, a tuple index,
#: or a callable that takes the output and returns the tensor.
OutputSelector = Union[str, int, Callable[[Any], torch.Tensor], None]

_DEFAULT_KEYS = ("logits", "logit", "out", "output", "scores")


def select_output(output: Any, selector: OutputSelector = None, keys: Sequence[str] = _DEFAULT_KEYS) -> torch.Tensor:
    """Return the tensor that ``selector`` points at inside ``output``.

    With ``selector=None`` a tensor is returned as is; a mapping or a transformers ``ModelOutput``
    gives its first present key among ``keys``; a namedtuple gives its first field among ``keys``,
    else its first field (torchvision's ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``).

    Raises:
        TypeError: if no tensor can be found; the message names the output type and its fields.
    """
    if callable(selector):
        found = selector(output)
    elif isinstance(selector, str):
        found = _by_name(output, selector)
    elif isinstance(selector, int):
        found = output[selector]
    elif selector is None:
        found = _guess(output, keys)
    else:
        raise TypeError(f"output selector must be a key, an index or a callable, got {type(selector).__name__}")
    if not isinstance(found, torch.Tensor):
        raise TypeError(
            f"the selected output of {type(output).__name__} is a {type(found).__name__}, not a tensor; "
            f"pass output_key=<name, index or callable> to point at the logits"
        )
    return found


def _by_name(output: Any, name: str) -> Any:
    if isinstance(output, Mapping) and name in output:
        return output[name]
    if hasattr(output, name):
        return getattr(output, name)
    raise TypeError(f"output of type {type(output).__name__} has no field {name!r}; its fields are {_fields(output)}")


def _guess(output: Any, keys: Sequence[str]) -> Any:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):  # dicts and transformers ModelOutput (an OrderedDict subclass)
        for key in keys:
            if output.get(key) is not None:
                return output[key]
    elif isinstance(output, tuple) and hasattr(output, "_fields"):  # namedtuple
        for key in keys:
            if key in output._fields:
                return getattr(output, key)
        return output[0]
    raise TypeError(
        f"cannot find the logits in a model output of type {type(output).__name__} (fields: {_fields(output)}); "
        f"pass output_key='name', output_key=0 or output_key=callable to point at them"
    )


def _fields(output: Any) -> list[str]:
    if isinstance(output, Mapping):
        return [str(k) for k in output.keys()]
    if hasattr(output, "_fields"):
        return list(output._fields)
    if isinstance(output, (tuple, list)):
        return [f"[{i}]" for i in range(len(output))]
    return []
