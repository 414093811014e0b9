"""Training logs through Lightning's own loggers: written into the run folder, read back by the results site.

Every Lightning training in the suite (Persona-Plug's ``PlugModule``, the LoRA stages of OPPU through
``baselines/lora_trainer.py``) logs the same three names with ``self.log``:

    train_loss   per optimiser step (Persona-Plug: the mean over its micro-batches; LoRA: the last micro-batch)
    lr           the learning rate at that step (Persona-Plug: the plug's; ``encoder_lr`` beside it when the
                 input encoder trains at its own rate)
    val_loss     the held-out loss (per validation check; only when the method validates)

``run.train_logger`` picks the logger: ``csv`` (default: Lightning's ``CSVLogger``, no extra package),
``tensorboard`` (``TensorBoardLogger``; needs ``tensorboard``), ``wandb`` (``WandbLogger``; needs ``wandb`` and
its login; offline) or ``none``. A method asks ``Context.train_logger(name)``; the logs land in the run's log
folder under ``<name>/`` (one training: ``plug``, ``task``, ``user-<id>``), which ``record`` keeps as
``<run folder>/logs/``; the results site reads the CSV ones (``logs/<name>/metrics.csv``, :func:`read_curves`).
The logger cannot change a number, so it is not part of the config hash.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

LOGGERS = ("csv", "tensorboard", "wandb", "none")
LOG_DIR = "logs"
METRICS = ("train_loss", "val_loss", "lr")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "train"


def make_logger(kind: str | None, log_dir: Path | str | None, name: str):
    """The Lightning logger for one training into ``<log_dir>/<name>/``, or ``False`` (no logging) when there is no
    log folder or kind=none. Methods get theirs from ``Context.train_logger(name)``."""
    kind = str(kind or "csv").lower()
    if kind not in LOGGERS:
        raise ValueError(f"run.train_logger must be one of {LOGGERS}, got {kind!r}")
    if kind == "none" or log_dir is None:
        return False
    save_dir, version = Path(log_dir), safe_name(name)
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger
        return CSVLogger(save_dir=str(save_dir), name="", version=version)
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger
        return TensorBoardLogger(save_dir=str(save_dir), name="", version=version, default_hp_metric=False)
    from lightning.pytorch.loggers import WandbLogger
    return WandbLogger(save_dir=str(save_dir), name=version, offline=True)


@dataclass
class Curve:
    """One training's logged series: metric -> [(step, value)] in step order."""

    name: str
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def last(self, metric: str) -> float | None:
        pts = self.series.get(metric) or []
        return pts[-1][1] if pts else None


def read_curves(run_dir: Path | str) -> list[Curve]:
    """Every ``logs/<name>/metrics.csv`` under a run folder (CSVLogger format), sorted by name."""
    out = []
    for path in sorted((Path(run_dir) / LOG_DIR).glob("*/metrics.csv")):
        series: dict[str, list[tuple[int, float]]] = {}
        with path.open(encoding="utf-8", newline="") as f:
            for i, rec in enumerate(csv.DictReader(f), 2):
                try:
                    step = int(float(rec.get("step") or 0))
                except ValueError:
                    raise ValueError(f"{path}:{i}: step {rec.get('step')!r} is not a number") from None
                for metric, text in rec.items():
                    if metric in ("step", "epoch") or text in (None, ""):
                        continue
                    try:
                        v = float(text)
                    except ValueError:
                        raise ValueError(f"{path}:{i}: {metric}={text!r} is not a number") from None
                    if math.isfinite(v):
                        series.setdefault(metric, []).append((step, v))
        out.append(Curve(path.parent.name, {k: sorted(v) for k, v in series.items()}))
    return out
