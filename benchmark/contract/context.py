"""What a method is handed: config, task spec, shared models, the store, the data, progress.

Models load lazily (an LLM-free baseline never loads one) and once per process: ``benchmark.models.loading`` keeps
them in an LRU keyed by their resolved config, so every method of a grid with the same backbone shares it.
``ctx.lm`` is a view of the shared backbone bound to this run's task spec and decoding settings, so
``ctx.lm.answer(prompts)`` applies the run's declared answer mode the same way for every method.
"""
from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from benchmark.cache.store import Store
from benchmark.data.tasks import TaskSpec, spec_from_config
from benchmark.models.lm import generation_budget
from benchmark.models.loading import load_backbone, load_embedder


class TaskLM:
    """The shared :class:`~benchmark.models.lm.LanguageModel` bound to one task and one decoding config."""

    def __init__(self, lm, spec: TaskSpec, decoding: dict[str, Any]):
        self._lm, self.spec, self.decoding = lm, spec, decoding

    def __getattr__(self, name: str) -> Any:  # tokenizer, kind, hidden_size, loss, choice_scores, ...
        return getattr(self._lm, name)

    @property
    def max_new_tokens(self) -> int:
        return generation_budget(self.spec, self.decoding)[0]

    def generate(self, prompts: Sequence[str], *, prefix: torch.Tensor | None = None, **kw) -> list[str]:
        max_new_tokens, num_beams = generation_budget(self.spec, self.decoding)
        kw.setdefault("max_new_tokens", max_new_tokens)
        kw.setdefault("num_beams", num_beams)
        return self._lm.generate(prompts, prefix=prefix, **kw)

    def answer(self, prompts: Sequence[str], prefix: torch.Tensor | None = None,
               placement: str = "prefix") -> tuple[list[str], list[str]]:
        return self._lm.answer(prompts, self.spec, self.decoding, prefix=prefix, placement=placement)


class StepBar(L.Callback):
    """Lightning callback: the optimiser steps of one training as a stage bar (made by ``Context.train_bar``)."""

    def __init__(self, desc: str, progress: Callable):
        self.desc, self.progress, self.bar = desc, progress, None

    def on_train_start(self, trainer, module) -> None:
        total = trainer.estimated_stepping_batches
        if trainer.is_global_zero:
            self.bar = self.progress(None, total=int(total) if math.isfinite(total) else None, desc=self.desc)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.bar is not None and trainer.global_step > self.bar.n:
            self.bar.update(trainer.global_step - self.bar.n)

    def on_train_end(self, trainer, module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Context:
    def __init__(self, cfg: DictConfig, data=None, store: Store | None = None, log_dir: Path | None = None):
        self.cfg = cfg
        self.spec: TaskSpec = spec_from_config(cfg.task)
        self.data = data                     # LampDataModule after setup(): per-user histories, splits
        self.store = store or Store(cfg.run.cache_dir)
        self.log_dir = log_dir               # Lightning training logs (a scratch folder; record() keeps it as logs/)
        self.seed = int(cfg.seed)

    def train_logger(self, name: str):
        """A Lightning logger for one training of this run (``run.train_logger``; ``benchmark.contract.trainlog``)."""
        from benchmark.contract.trainlog import make_logger
        return make_logger(self.cfg.run.get("train_logger"), self.log_dir, name)

    @cached_property
    def lm(self) -> TaskLM:
        decoding = OmegaConf.to_container(self.cfg.decoding, resolve=True)
        return TaskLM(load_backbone(self.cfg.backbone, decoding), self.spec, decoding)

    @cached_property
    def embedder(self):
        return load_embedder(self.cfg.embedder)

    def loaded(self) -> dict[str, Any]:
        """Identity of the models this run actually loaded (for the row)."""
        out: dict[str, Any] = {}
        if "lm" in self.__dict__:
            out["backbone"] = dict(self.lm.ident)
        if "embedder" in self.__dict__:
            out["embedder"] = dict(self.embedder.ident)
        return out

    @staticmethod
    def progress(iterable: Iterable, total: int | None = None, desc: str = "") -> Iterable:
        """One stage bar with ETA (tqdm), for any stage: encode, rank, summarise, train, generate. It sits under the
        grid's bar (``benchmark.runs.progress``) and is quiet when stderr is not a terminal."""
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)

    def train_bar(self, desc: str = "train"):
        """A Lightning callback that shows one training's optimiser steps as a stage bar (``Context.progress``)."""
        return StepBar(desc, self.progress)
