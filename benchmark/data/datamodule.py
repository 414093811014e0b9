"""LampDataModule: one task's training and evaluation questions, per-user histories, and data provenance.

The DataModule is the answer to "which data, which split, which questions did this number come from?"
(Lightning docs, *LightningDataModule*; lightning-hydra-template):

* ``prepare_data()`` resolves the eval source (``data.source``) and the train source (``data.train_source``,
  default the same), checks that the split files exist and hashes them into ``self.provenance``
  (sources, roots, files + sha256, one digest, splits, caps). Synthetic packs are generated here.
* ``setup(stage)`` reads ``data.train_split`` from the train source and ``data.eval_split`` from the eval
  source through :func:`benchmark.data.reader.read_split` (re-checking the hashes against the bytes parsed), then
  applies the seeded caps: ``data.limit`` eval questions and ``data.train_limit`` train questions, each a
  ``random.Random`` sample of its own (seeded by ``seed`` and the role, never the global RNG), sorted back to
  file order. The count and the sha256 of the selected ids go into the provenance.
* ``user_history(user_key)`` is the leak-free history of a user for per-user methods
  (:func:`benchmark.data.example.leak_free_history` over the user's *evaluated* questions: the items in every
  one of their profiles, so no evaluated question's gold is inside; in a time-based split, the profile of the
  user's earliest evaluated question). Users with no evaluated question get their longest train profile.

Lightning runs ``prepare_data`` on one process only; ``setup`` therefore re-resolves when it finds no
provenance (same result: resolution is deterministic).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from benchmark.cache.store import sha256_file
from benchmark.data.reader import SplitData, data_digest, ids_digest, read_split, split_paths
from benchmark.data.example import Example, leak_free_history
from benchmark.data.sources import DataSource, resolve_source
from benchmark.data.tasks import TaskSpec

ROLES = ("train", "eval")


def collate_examples(batch: Sequence[Example]) -> list[Example]:
    """Batches stay lists of :class:`Example`: methods build their own prompts and tensors."""
    return list(batch)


def seeded_subset(examples: Sequence[Example], limit: int | None, seed: int, role: str) -> list[Example]:
    """``limit`` examples drawn with ``random.Random(f"{seed}:{role}")``, in file order; all when no cap."""
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit < 1:
        raise ValueError(f"data.{'limit' if role == 'eval' else 'train_limit'} must be >= 1 or null, got {limit}")
    rng = random.Random(f"{seed}:{role}")
    keep = sorted(rng.sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


class LampDataModule(L.LightningDataModule):
    def __init__(self, cfg: Any, spec: TaskSpec):
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.seed = int(cfg.seed)
        self.splits = {"train": str(cfg.data.train_split), "eval": str(cfg.data.eval_split)}
        self.limits = {"train": cfg.data.train_limit, "eval": cfg.data.limit}
        self.sources: dict[str, DataSource] = {}
        self.provenance: dict[str, Any] | None = None
        self.train_examples: list[Example] = []
        self.eval_examples: list[Example] = []
        self.eval_has_gold = False
        self._history: dict[str, tuple[dict[str, Any], ...]] = {}
        self._ready = False

    # ------------------------------------------------------------------ prepare: resolve, verify, hash
    def prepare_data(self) -> None:
        if self.provenance is not None:  # Trainer.fit/predict call it again: keep the recorded selection
            return
        data = self.cfg.data
        # the synthetic pack is data, not a method's randomness: always seed 0, so a seed study keeps its data
        resolve = dict(spec=self.spec, cache_dir=self.cfg.run.cache_dir, seed=0)
        eval_name = str(data.source)
        train_name = str(data.train_source) if data.train_source not in (None, "") else eval_name
        self.sources["eval"] = resolve_source(eval_name, data, **resolve)
        self.sources["train"] = (self.sources["eval"] if train_name == eval_name
                                 else resolve_source(train_name, data, **resolve))
        files: dict[str, dict[str, str]] = {}
        for role in ROLES:
            root = self.sources[role].root
            q, o = split_paths(root, self.spec, self.splits[role])  # FileNotFoundError names the paths tried
            files[role] = {p.relative_to(root).as_posix(): sha256_file(p) for p in (q, o) if p is not None}
        self.provenance = {
            "task": self.spec.name,
            "task_version": self.spec.version,
            "sources": {role: {"name": s.name, "kind": s.kind, "root": str(s.root), "reason": s.reason}
                        for role, s in self.sources.items()},
            "splits": dict(self.splits),
            "files": files,
            "digest": data_digest({f"{role}:{rel}": sha for role in ROLES for rel, sha in files[role].items()}),
            "seed": self.seed,
            "limits": {"limit": self.limits["eval"], "train_limit": self.limits["train"]},
            "selection": {},
        }

    # ------------------------------------------------------------------ setup: read, check, cap
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        if self.provenance is None:
            self.prepare_data()
        assert self.provenance is not None
        read: dict[str, SplitData] = {}
        for role in ROLES:
            src, split = self.sources[role], self.splits[role]
            same = role == "eval" and src.root == self.sources["train"].root and split == self.splits["train"]
            read[role] = read["train"] if same else read_split(src.root, self.spec, split)
            if read[role].files != self.provenance["files"][role]:
                raise RuntimeError(f"{src.root}: {self.spec.name} {split} files changed between prepare_data and "
                                   f"setup: {self.provenance['files'][role]} vs {read[role].files}")
        self.eval_has_gold = read["eval"].has_outputs
        self.train_examples = seeded_subset(read["train"].examples, self.limits["train"], self.seed, "train")
        self.eval_examples = seeded_subset(read["eval"].examples, self.limits["eval"], self.seed, "eval")
        for role, chosen in (("train", self.train_examples), ("eval", self.eval_examples)):
            self.provenance["selection"][role] = {
                "n_total": len(read[role].examples), "n_selected": len(chosen),
                "ids_sha256": ids_digest([e.id for e in chosen])}
        self.provenance["eval_has_gold"] = self.eval_has_gold
        self._history = {}
        for ex in read["train"].examples:
            if len(ex.profile) >= len(self._history.get(ex.user_key, ())):
                self._history[ex.user_key] = ex.profile
        evaluated: dict[str, list[Example]] = {}
        for ex in self.eval_examples:
            evaluated.setdefault(ex.user_key, []).append(ex)
        self._history.update({user: tuple(leak_free_history(exs)) for user, exs in evaluated.items()})
        self._ready = True

    # ------------------------------------------------------------------ per-user access
    def user_history(self, user_key: str) -> tuple[dict[str, Any], ...]:
        """The user's leak-free history: see the module docstring."""
        self._require_setup()
        if user_key not in self._history:
            raise KeyError(f"{self.spec.name}: no question of user {user_key!r} in the loaded "
                           f"{self.splits['train']}/{self.splits['eval']} data")
        return self._history[user_key]

    def users(self, which: str = "all") -> list[str]:
        """User keys of the selected questions (``all`` | ``train`` | ``eval``), in order of first appearance."""
        self._require_setup()
        pools = {"train": self.train_examples, "eval": self.eval_examples,
                 "all": [*self.train_examples, *self.eval_examples]}
        if which not in pools:
            raise ValueError(f"users(which={which!r}): expected one of {sorted(pools)}")
        return list(dict.fromkeys(ex.user_key for ex in pools[which]))

    # ------------------------------------------------------------------ loaders
    def train_dataloader(self) -> DataLoader:
        self._require_setup()
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_examples, batch_size=self._batch_size(), shuffle=True, generator=gen,
                          collate_fn=collate_examples)

    def predict_dataloader(self) -> DataLoader:
        self._require_setup()
        return DataLoader(self.eval_examples, batch_size=self._batch_size(), shuffle=False,
                          collate_fn=collate_examples)

    def _batch_size(self) -> int:
        return int(self.cfg.backbone.batch_size)

    def _require_setup(self) -> None:
        if not self._ready:
            raise RuntimeError("LampDataModule: call setup() first")
