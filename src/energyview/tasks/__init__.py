"""Run types beyond the plain classifier; each module registers its tasks with the pipeline."""

from . import contrastive, jem  # noqa: F401
