"""Persona-Plug's training and prediction data: items, the frozen history table, augmentation, loaders.

Mirrors the official data path (the official ``aggr_id.py`` + ``code/PersonalDataset_profile.py``):

* a question's history is its own profile (train and eval alike), each item embedded once with the *frozen*
  embedder as ``spec.history_text(item)`` through the shared content-hash store
  (``benchmark.retrieval.embeddings.embed_texts``); the vectors form one table ``[N, De]`` and an item keeps row indices;
* the query of the input encoder is the method's per-task ``query`` rule applied to the input (``method.query``,
  from the ``tasks:`` block of configs/methods/pplug.yaml; the embedder adds its query instruction);
* training augmentation (``aggr_id.py`` step 4), **seeded** here (the original is not): every question with more
  than 2 history items gets ``copies`` extra copies, each with ``int(n * U(0, 0.5)) + 1`` items deleted, the kept
  ones in ``random.sample`` order; the original is kept too (x11 for the paper's 10 copies);
* the last ``cap`` history items in list order are used (``his_id[-512:]``): for an original profile, oldest
  first, that is the most recent ``cap``.

Prediction reads the questions it is given in order; under a launcher the run has already split them over the
ranks (benchmark/runs/ranks.py: a padding ``DistributedSampler`` over questions, gathered by id on rank 0).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers.trainer_pt_utils import LengthGroupedSampler

from benchmark.data.example import Example
from benchmark.data.tasks import QueryRule, extract_query
from personaplug.model import pad_history


@dataclass(frozen=True)
class PlugItem:
    id: str                      # example id (augmented copies share their original's id)
    prompt: str                  # the LLM input text (official LaMP input, or the RAG prompt)
    target: str | None           # gold output (training); None when predicting
    query: str                   # text for the input encoder
    history: tuple[int, ...]     # rows of the history table, in profile order
    labels: tuple[int, ...] = () # per history item: its label's index in spec.labels (-1 = none); pplug_labels


def history_table(ctx, examples: Sequence[Example]) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """Embed every distinct history text once -> table ``[N, De]`` and, per example, its row indices."""
    from benchmark.retrieval.embeddings import embed_texts

    texts: dict[str, int] = {}
    rows = []
    for ex in examples:
        rows.append(tuple(texts.setdefault(ctx.spec.history_text(item), len(texts)) for item in ex.profile))
    table = embed_texts(ctx, ctx.store, list(texts)) if texts else torch.zeros(0, ctx.embedder.dim)
    table = torch.as_tensor(table, dtype=torch.float32)                                 # [N, De]
    if table.shape != (len(texts), ctx.embedder.dim):
        raise ValueError(f"personaplug/data.py: embed_texts returned {tuple(table.shape)} for {len(texts)} texts "
                         f"of dim {ctx.embedder.dim}")
    return table, rows


def item_label(spec, item: dict[str, Any]) -> int:
    """A history item's label as an index into ``spec.labels`` (the profile field ``spec.answer_field``):
    exact text, or a number equal to a numeric label (``"5.0"`` -> ``"5"``); -1 when absent or outside the set."""
    value = str(item.get(spec.answer_field, "") if spec.answer_field else "").strip()
    if value in spec.labels:
        return spec.labels.index(value)
    try:
        number = float(value)
    except ValueError:
        return -1
    return next((j for j, lab in enumerate(spec.labels) if _number(lab) == number), -1)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def make_items(ctx, examples: Sequence[Example], prompts: Sequence[str], rows: Sequence[tuple[int, ...]],
               *, query: QueryRule, with_targets: bool, with_labels: bool = False) -> list[PlugItem]:
    items = []
    for ex, prompt, hist in zip(examples, prompts, rows, strict=True):
        if with_targets and ex.gold is None:
            raise ValueError(f"personaplug/data.py: training example {ex.id!r} has no gold output")
        labels = tuple(item_label(ctx.spec, it) for it in ex.profile) if with_labels else ()
        items.append(PlugItem(id=ex.id, prompt=prompt, target=ex.gold if with_targets else None,
                              query=extract_query(query, ex.input), history=hist, labels=labels))
    return items


def augment(items: Sequence[PlugItem], copies: int, seed: int) -> list[PlugItem]:
    """The official history-deletion augmentation, seeded (``aggr_id.py`` step 4)."""
    rng = random.Random(f"pplug-augment:{seed}")
    out: list[PlugItem] = []
    for it in items:
        out.append(it)
        n = len(it.history)
        if n <= 2:
            continue
        for _ in range(copies):
            del_n = int(n * rng.uniform(0, 0.5)) + 1
            keep = rng.sample(range(n), n - del_n)          # the positions random.sample(history, k) would pick
            out.append(replace(it, history=tuple(it.history[j] for j in keep),
                               labels=tuple(it.labels[j] for j in keep) if it.labels else ()))
    return out


def split_by_user(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``fraction`` of the *training* users (seeded) for checkpoint selection; never the eval split."""
    users = sorted({ex.user_key for ex in examples})
    rng = random.Random(f"pplug-select:{seed}")
    rng.shuffle(users)
    held = set(users[:max(1, round(fraction * len(users)))]) if fraction > 0 and len(users) > 1 else set()
    return [ex for ex in examples if ex.user_key not in held], [ex for ex in examples if ex.user_key in held]


class PlugBatches:
    """Collate: items -> {ids, prompts, targets, queries, history [B, H, De], mask [B, H], labels [B, H]}
    (labels: -1 on padding and where items carry none)."""

    def __init__(self, table: torch.Tensor, cap: int):
        self.table, self.cap = table, int(cap)

    def __call__(self, items: list[PlugItem]) -> dict[str, Any]:
        vecs = [self.table[list(it.history[-self.cap:])] if it.history else self.table.new_zeros(0, self.table.shape[1])
                for it in items]                                                         # each [n_b, De]
        history, mask = pad_history(vecs, self.table.shape[1])                          # [B, H, De], [B, H]
        labels = torch.full(mask.shape, -1, dtype=torch.long)                           # [B, H]
        for b, it in enumerate(items):
            kept = it.labels[-self.cap:] if it.history else ()
            labels[b, :len(kept)] = torch.tensor(kept, dtype=torch.long)
        return {"ids": [it.id for it in items], "prompts": [it.prompt for it in items],
                "targets": [it.target for it in items], "queries": [it.query for it in items],
                "history": history, "mask": mask, "labels": labels}


class PlugData(L.LightningDataModule):
    """Loaders over one history table (training: length-grouped shuffling; prediction: in order)."""

    def __init__(self, table: torch.Tensor, *, train: Sequence[PlugItem] = (), val: Sequence[PlugItem] = (),
                 predict: Sequence[PlugItem] = (), cap: int = 512, batch_size: int = 2,
                 predict_batch_size: int = 8, seed: int = 0):
        super().__init__()
        self.collate = PlugBatches(table, cap)
        self.train, self.val, self.predict = list(train), list(val), list(predict)
        self.batch_size, self.predict_batch_size, self.seed = batch_size, predict_batch_size, seed

    def train_dataloader(self) -> DataLoader:
        """Seeded, length-grouped shuffling (the HF Trainer's ``group_by_length``): batches of similar prompt
        length, so dynamic padding wastes little of the frozen LLM's forward and backward passes."""
        gen = torch.Generator().manual_seed(self.seed)
        sampler = LengthGroupedSampler(self.batch_size, lengths=[len(it.prompt) + len(it.target or "")
                                                                 for it in self.train], generator=gen)
        return DataLoader(self.train, batch_size=self.batch_size, sampler=sampler, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.predict_batch_size, collate_fn=self.collate)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.predict, batch_size=self.predict_batch_size, collate_fn=self.collate)
