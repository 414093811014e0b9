"""Train one LoRA adapter on (prompt -> target) pairs with Lightning: the loop both OPPU stages share.

* :func:`attach_lora` wraps a backbone in a peft LoRA (``LoraConfig`` + ``get_peft_model``); the task type
  (``CAUSAL_LM`` / ``SEQ_2_SEQ_LM``) follows the backbone kind and ``target_modules: auto`` picks the attention
  projections that exist in the model: ``q_proj``/``v_proj`` (Llama, Qwen, Mistral, SmolLM) or ``q``/``v``
  (T5), as OPPU's stage 2 and LaMP's per-user PEFT (arXiv 2409.09510) adapt them.
* :func:`train_lora` runs a small :class:`PairLoss` LightningModule (``LanguageModel.loss``: cross-entropy on
  target tokens only, as OPPU masks the prompt with -100) under a ``lightning.Trainer`` with ``max_epochs``,
  gradient accumulation, clipping and precision from config, no checkpoints (the caller saves the adapter under a
  content-hash key); ``train_loss`` and ``lr`` go to the caller's Lightning logger (CSV in the run folder). AdamW with a linear warmup/decay schedule, OPPU's optimiser
  (``adamw_torch``, warmup 0.1, linear, ``max_grad_norm`` 0.3). Shuffling and dropout draw from RNGs seeded by
  the caller, so an adapter does not depend on what was trained before it in the same process.
* :func:`save_adapter` / :func:`read_adapter`: ``save_pretrained`` and a ``meta.json`` into a folder the caller
  gets from ``Store.save_dir`` (a private temp folder renamed into place), so an interrupted run never leaves a
  half-written adapter that looks done, and two processes saving the same adapter never mix their files.
"""
from __future__ import annotations

import json
import logging
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers.trainer_pt_utils import LengthGroupedSampler

from benchmark.models.devices import local_strategy
from benchmark.models.schedule import linear_warmup_decay

# attention projections to adapt, by backbone kind; the first set the model has wins
AUTO_TARGETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "causal": (("q_proj", "v_proj"), ("c_attn",), ("query_key_value",)),
    "seq2seq": (("q", "v"), ("q_proj", "v_proj")),
}
ADAPTER_FILE = "adapter_model.safetensors"
FORMAT = 2             # bump when a code change can change trained adapters (part of every adapter's cache key)
META_FILE = "meta.json"


@dataclass
class LoraStage:
    """One LoRA stage: its shape and how long it trains (``method.task`` / ``method.user`` in the config)."""
    r: int = 8
    alpha: int = 8
    dropout: float = 0.05
    target_modules: Any = "auto"   # "auto" (by backbone kind) or a list of module names
    epochs: int = 1
    max_pairs: int = 200           # cap on training pairs (each stage says which pairs it keeps)
    lr: float = 5e-4               # CPU default (few steps); OPPU: 1e-4
    batch_size: int = 8
    accumulate: int = 1

    def __post_init__(self) -> None:
        for key in ("r", "alpha", "batch_size", "accumulate"):
            if getattr(self, key) < 1:
                raise ValueError(f"method.*.{key} must be >= 1, got {getattr(self, key)}")
        if self.epochs < 0 or self.max_pairs < 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"a LoRA stage needs epochs >= 0, max_pairs >= 0 and dropout in [0, 1); got "
                             f"epochs={self.epochs}, max_pairs={self.max_pairs}, dropout={self.dropout}")


@dataclass
class TrainSettings:
    """Optimiser and numerics shared by both stages (OPPU's settings)."""
    weight_decay: float = 0.01
    warmup: float = 0.1            # fraction of optimiser steps with a linear warmup
    max_grad_norm: float = 0.3
    precision: str = "32-true"     # Lightning precision: 32-true | bf16-mixed | 16-mixed
    max_target_tokens: int = 128

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(f"method.train.warmup must be in [0, 1], got {self.warmup}")


@dataclass
class TrainStats:
    seconds: float = 0.0           # wall clock
    cpu_seconds: float = 0.0       # process CPU time (all threads): comparable on a shared machine
    n_pairs: int = 0
    steps: int = 0
    losses: list[float] = field(default_factory=list)  # per optimiser micro-batch, in order
    trainable_params: int = 0


# ---------------------------------------------------------------------------------------------- LoRA
def resolve_targets(model: torch.nn.Module, kind: str, target_modules: Any) -> list[str]:
    """``auto`` -> the first :data:`AUTO_TARGETS` set whose names all occur among the model's leaf modules."""
    if target_modules != "auto":
        return [str(t) for t in target_modules]
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for names in AUTO_TARGETS[kind]:
        if set(names) <= leaves:
            return list(names)
    raise ValueError(f"baselines/lora_trainer.py: target_modules=auto found none of {AUTO_TARGETS[kind]} in the "
                     f"{kind} backbone {type(model).__name__}; set method.task/user.target_modules explicitly")


def attach_lora(model: torch.nn.Module, kind: str, stage: LoraStage, seed: int):
    """A fresh LoRA on ``model`` (modified in place, base weights frozen) -> ``peft.PeftModel``.

    The LoRA A matrices are drawn from ``torch.manual_seed(seed)``; B starts at zero, so the adapted model
    equals ``model`` until it is trained."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM if kind == "seq2seq" else TaskType.CAUSAL_LM,
                        r=stage.r, lora_alpha=stage.alpha, lora_dropout=stage.dropout,
                        target_modules=resolve_targets(model, kind, stage.target_modules), bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config)
    return peft_model


def adapter_state(peft_model) -> dict[str, torch.Tensor]:
    """A detached copy of the adapter's weights (peft's naming, without the adapter name)."""
    from peft import get_peft_model_state_dict
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def load_state(peft_model, state: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict
    result = set_peft_model_state_dict(peft_model, state)
    missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if missing:
        raise RuntimeError(f"baselines/lora_trainer.py: adapter weights do not fit the model: {missing[:3]}")


def trainable_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------- storage
def save_adapter(peft_model, folder: Path, meta: dict[str, Any]) -> int:
    """``save_pretrained`` + ``meta.json`` into ``folder`` (a fresh one from ``Store.save_dir``) -> adapter bytes."""
    peft_model.save_pretrained(str(folder))
    n_bytes = (folder / ADAPTER_FILE).stat().st_size
    (folder / META_FILE).write_text(json.dumps({**meta, "adapter_bytes": n_bytes}, indent=1, sort_keys=True))
    return n_bytes


def read_adapter(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file
    return load_file(str(folder / ADAPTER_FILE)), json.loads((folder / META_FILE).read_text())


def is_saved(folder: Path) -> bool:
    return (folder / ADAPTER_FILE).is_file() and (folder / META_FILE).is_file()


# ---------------------------------------------------------------------------------------------- training
class PairLoss(L.LightningModule):
    """Cross-entropy on the target tokens of (prompt, target) batches through a LanguageModel's ``loss``."""

    def __init__(self, lm, settings: TrainSettings, lr: float, total_steps: int):
        super().__init__()
        self.lm = lm
        self.net = lm.model                    # registered, so Lightning moves it and toggles train/eval
        self.settings, self.lr, self.total_steps = settings, lr, total_steps
        self.losses: list[float] = []

    def training_step(self, batch: tuple[list[str], list[str]], batch_idx: int) -> torch.Tensor:
        prompts, targets = batch
        loss = self.lm.loss(prompts, targets, max_target_tokens=self.settings.max_target_tokens)
        self.losses.append(float(loss.detach()))
        self.log("train_loss", loss, batch_size=len(prompts))
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=len(prompts))
        return loss

    def configure_optimizers(self):
        params = [p for p in self.net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.settings.weight_decay)
        # linear warm-up to lr, then linear decay to 0; the first of a user's few steps already trains
        factor = linear_warmup_decay(self.total_steps, self.settings.warmup, warmup_from_zero=False)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _collate(batch: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [p for p, _ in batch], [t for _, t in batch]


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's per-fit banners ('GPU available', 'max_epochs reached') would print once per user."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", message=".*treespec.*")
        try:
            yield
        finally:
            for lg, lvl in zip(loggers, levels):
                lg.setLevel(lvl)


def train_lora(lm, pairs: Sequence[tuple[str, str]], stage: LoraStage, settings: TrainSettings, *, seed: int,
               progress_bar: bool = False, logger: Any = False, callbacks: list | None = None) -> TrainStats:
    """Train the trainable (LoRA) parameters of ``lm.model`` on ``pairs``; leaves the model in eval mode.
    ``logger``: a Lightning logger for train_loss and lr (``Context.train_logger``); ``callbacks``: e.g. a step bar."""
    if not pairs:
        raise ValueError("baselines/lora_trainer.py: train_lora got no training pairs")
    bs, accumulate, epochs = stage.batch_size, stage.accumulate, stage.epochs
    steps = math.ceil(math.ceil(len(pairs) / bs) / accumulate) * epochs
    module = PairLoss(lm, settings, stage.lr, steps)
    # length-grouped shuffling (the HF Trainer's group_by_length): random batches of similar length pad least
    sampler = LengthGroupedSampler(bs, lengths=[len(p) + len(t) for p, t in pairs],
                                   generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(list(pairs), batch_size=bs, sampler=sampler, collate_fn=_collate)
    accelerator = "gpu" if lm.device.type == "cuda" else "cpu"
    t0, c0 = time.perf_counter(), time.process_time()
    with _quiet_lightning(), torch.random.fork_rng(devices=[lm.device] if accelerator == "gpu" else []):
        torch.manual_seed(seed)   # LoRA dropout
        lm.model.train()          # Lightning keeps the mode it finds; the backbone is loaded in eval mode
        trainer = L.Trainer(max_epochs=epochs, accumulate_grad_batches=accumulate,
                            gradient_clip_val=settings.max_grad_norm or None,
                            precision=settings.precision, accelerator=accelerator,
                            strategy=local_strategy(lm.device),    # this process's device, under any launcher
                            enable_checkpointing=False, logger=logger, enable_model_summary=False,
                            enable_progress_bar=progress_bar, num_sanity_val_steps=0, log_every_n_steps=1,
                            callbacks=callbacks or [])
        trainer.fit(module, train_dataloaders=loader)
    lm.model.eval()
    return TrainStats(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, n_pairs=len(pairs),
                      steps=steps, losses=module.losses, trainable_params=trainable_params(lm.model))
