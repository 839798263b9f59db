"""Run logging: metrics as JSON lines (TensorBoard as well when it is installed) and the tqdm progress bar."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm


class MetricsLog:
    """Appends one JSON object per line to `metrics.jsonl`: {"kind": "train" | "val", "step", "epoch", ...}.

    On resume the lines written after the checkpoint's step are dropped first, so the file reads as one clean run
    even after a crash. TensorBoard scalars are mirrored when `tensorboard` is importable; nothing else needs it.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= resume_step]
            self.path.write_text("".join(f"{line}\n" for line in kept))
        self._file = open(self.path, "a", buffering=1)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass
            else:
                self._writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)

    def write(self, kind: str, step: int, epoch: int, values: dict[str, Any]) -> None:
        record = {"kind": kind, "step": step, "epoch": epoch, "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def _step(line: str) -> float:
    """The step of a metrics line; a line torn by a kill (or blank) sorts after every step, so it is dropped."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")


def progress_bar(total_steps: int, done_steps: int, enabled: bool) -> tqdm:
    """One bar over the whole run (so its ETA is the run's), starting at the resumed step."""
    return tqdm(total=total_steps, initial=done_steps, disable=not enabled, dynamic_ncols=True, unit="it",
                file=sys.stderr, mininterval=1.0, smoothing=0.05)


def format_terms(values: dict[str, float]) -> dict[str, str]:
    """Loss terms and the learning rate, short enough for the bar's postfix."""
    return {name: f"{value:.3g}" if name == "lr" else f"{value:.4f}" for name, value in values.items()}
