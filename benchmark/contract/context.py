"""What a method is handed: config, task spec, shared models, the store, the data, progress.

Models load lazily (an LLM-free baseline never loads one) and once per process: ``benchmark.models.loading`` keeps
them in an LRU keyed by their resolved config, so every method of a grid with the same backbone shares it.
``ctx.lm`` is a view of the shared backbone bound to this run's task spec and decoding settings, so
``ctx.lm.answer(prompts)`` applies the run's declared answer mode the same way for every method.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Iterable, Sequence

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

    def answer(self, prompts: Sequence[str], prefix: torch.Tensor | None = None) -> tuple[list[str], list[str]]:
        return self._lm.answer(prompts, self.spec, self.decoding, prefix=prefix)


class Context:
    def __init__(self, cfg: DictConfig, data=None, store: Store | None = None):
        self.cfg = cfg
        self.spec: TaskSpec = spec_from_config(cfg.task)
        self.data = data                     # LampDataModule after setup(): per-user histories, splits
        self.store = store or Store(cfg.run.cache_dir)
        self.seed = int(cfg.seed)

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
        """One progress bar with ETA (tqdm), for any stage: encode, rank, summarise, train, generate."""
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
