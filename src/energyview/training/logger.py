"""Metrics logs: a CSV file always, TensorBoard when it is installed."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Mapping

__all__ = ["MetricsLogger"]

log = logging.getLogger(__name__)


class MetricsLogger:
    """Append rows of scalars to ``DIR/metrics.csv`` and, if available, to TensorBoard.

    Columns are fixed by the first row written; a later row with new keys starts
    ``metrics-<n>.csv`` instead of corrupting the header. Resuming appends to the same file.
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self._columns: list[str] | None = None
        self._path = self.out_dir / "metrics.csv"
        self._writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.debug("tensorboard is not installed; logging to CSV only")
            else:
                self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))

    def log(self, step: int, values: Mapping[str, float], prefix: str = "train") -> None:
        if not self.enabled:
            return
        row = {"step": step, **{f"{prefix}/{k}": float(v) for k, v in values.items()}}
        self._write_csv(row)
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)

    def _write_csv(self, row: dict[str, float]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._columns is None:
            self._columns = self._existing_columns() or list(row)
        if set(row) - set(self._columns):
            index = len(list(self.out_dir.glob("metrics*.csv")))
            self._path = self.out_dir / f"metrics-{index}.csv"
            self._columns = list(row)
        new_file = not self._path.exists()
        with open(self._path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._columns)
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def _existing_columns(self) -> list[str] | None:
        if not self._path.exists():
            return None
        with open(self._path, newline="") as handle:
            return next(csv.reader(handle), None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
