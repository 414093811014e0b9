"""The thin LightningModule around :class:`~personaplug.model.PersonaPlug`, and the Trainer built from config.

Training (the official ``code/main_profile.py`` + ``code/run_all_t5.sh``): the frozen LLM's own cross-entropy on the
target tokens with the soft tokens in front of the prompt (``lm.loss(prompts, targets, prefix=...)``); AdamW
(lr 1e-4, weight decay 1e-4), linear warmup over 5% of the optimizer steps then linear decay to 0 (the Hugging
Face ``linear`` schedule), gradient-norm clipping at 1.0 (the HF Trainer default the official run inherits),
epochs and gradient accumulation from the method config.

The LLM is *not* a submodule: it is shared by every method of a process, stays in eval mode (no dropout;
the official T5 ran with its dropout on, see docs/personaplug.md), is never checkpointed or wrapped by
DDP/FSDP, and its weights never receive a gradient (checked after the first backward).

Checkpoint rule: ``select="last"`` evaluates the weights after the last optimizer step (the official code
evaluates the final model). ``select="dev_loss"`` computes the loss on a held-out slice of the *training* users
after every epoch and keeps the trainable state of the best epoch. Only trainable parameters are kept.

Prediction goes through ``Trainer.predict`` on this process's device over the questions it is given, answering
with ``lm.answer`` (the run's answer mode). Under a launcher the run has already split the questions over the
ranks and gathers the answers itself (benchmark/runs/ranks.py): the module neither shards nor gathers.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from benchmark.models.devices import launched, local_strategy
from benchmark.models.schedule import linear_warmup_decay
from personaplug.model import PersonaPlug


def resolve_precision(precision: str) -> str:
    """``auto`` = bf16-mixed on a GPU, 32 on CPU."""
    if precision == "auto":
        return "bf16-mixed" if torch.cuda.is_available() else "32"
    return str(precision)


def make_trainer(cfg: Any, *, epochs: int | None = None, predict: bool = False, validate: bool = False,
                 device: torch.device | None = None) -> L.Trainer:
    """A Lightning Trainer from the method config (accelerator, devices, strategy, precision, epochs/steps).

    The Trainer stays on one device (``method.devices`` must be 1); under a launcher, on this rank's ``device``: the
    run fits on rank 0 and splits prediction over the ranks itself (benchmark/runs/ranks.py)."""
    if str(cfg.devices) not in ("1", "auto"):
        raise ValueError(f"personaplug: method.devices={cfg.devices}: a Trainer would start copies of the whole "
                         f"command; launch the run with torchrun or srun instead (docs/scaling.md)")
    kw: dict[str, Any] = {}
    place: dict[str, Any] = dict(accelerator=cfg.accelerator, devices=1, strategy=cfg.strategy)
    if launched() and device is not None:
        place = dict(strategy=local_strategy(device))
    if not predict:
        kw = dict(max_epochs=cfg.epochs if epochs is None else epochs, max_steps=cfg.max_steps,
                  accumulate_grad_batches=cfg.accumulate_grad_batches, gradient_clip_val=cfg.grad_clip,
                  limit_val_batches=1.0 if validate else 0, num_sanity_val_steps=0)
    return L.Trainer(**place, precision=resolve_precision(cfg.precision), logger=False, enable_checkpointing=False,
                     enable_model_summary=False, enable_progress_bar=cfg.progress_bar,
                     use_distributed_sampler=not predict and not launched(), **kw)


class PlugModule(L.LightningModule):
    def __init__(self, plug: PersonaPlug, lm, *, lr: float = 1e-4, weight_decay: float = 1e-4,
                 warmup_ratio: float = 0.05, max_target_tokens: int = 128, select: str = "last"):
        super().__init__()
        if select not in ("last", "dev_loss"):
            raise ValueError(f"personaplug/module.py: select must be last | dev_loss, got {select!r}")
        self.plug = plug
        self.lm = lm                                     # TaskLM: a plain object, so not a registered submodule
        if any(p.requires_grad for p in self._llm_params()):
            raise RuntimeError("personaplug/module.py: the LLM has trainable weights; Persona-Plug needs it frozen")
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        self.max_target_tokens, self.select = max_target_tokens, select
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []
        self.val_loss = MeanMetric()                     # torchmetrics: example-weighted, synced across DDP ranks
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.predictions: dict[str, tuple[str, str]] = {}
        self._local: list[tuple[str, str, str]] = []
        self._checked_llm_grads = False

    def _llm_params(self):
        return self.lm.model.parameters()

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.plug(batch["history"], batch["mask"], batch["queries"])                # [B, P, L]

    # ------------------------------------------------------------------ devices
    def setup(self, stage: str) -> None:
        """Put the shared frozen LLM on this rank's device (a no-op on CPU or a single GPU)."""
        base = getattr(self.lm, "_lm", self.lm)                  # TaskLM -> the shared LanguageModel
        device = self.trainer.strategy.root_device
        if base.device != device:
            base.model.to(device)
            base.device = device

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        soft = self(batch)                                                                 # [B, P, L]
        loss = self.lm.loss(batch["prompts"], batch["targets"], prefix=soft, max_target_tokens=self.max_target_tokens)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        self.train_losses.append(float(loss.detach()))
        return loss

    def on_after_backward(self) -> None:
        if not self._checked_llm_grads:
            leaked = [n for n, p in self.lm.model.named_parameters() if p.grad is not None]
            if leaked:
                raise RuntimeError(f"personaplug/module.py: gradient reached LLM weights {leaked[:3]}")
            self._checked_llm_grads = True

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        soft = self(batch)                                                                 # [B, P, L]
        loss = self.lm.loss(batch["prompts"], batch["targets"], prefix=soft, max_target_tokens=self.max_target_tokens)
        self.val_loss.update(loss.detach(), weight=len(batch["ids"]))

    def on_validation_epoch_end(self) -> None:
        val = float(self.val_loss.compute())
        self.val_loss.reset()
        self.log("val_loss", val)
        self.val_losses.append(val)
        if self.select == "dev_loss" and (self.best is None or val < self.best[0]):
            self.best = (val, self.current_epoch, self.plug.trainable_state())

    def configure_optimizers(self):
        params = [p for p in self.plug.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        factor = linear_warmup_decay(self.trainer.estimated_stepping_batches, self.warmup_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def selected_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The checkpoint that is evaluated, and which one it is."""
        if self.select == "dev_loss" and self.best is not None:
            return self.best[2], {"select": "dev_loss", "epoch": self.best[1], "val_loss": self.best[0]}
        return self.plug.trainable_state(), {"select": "last", "epoch": self.current_epoch}

    # ------------------------------------------------------------------ prediction
    def on_predict_epoch_start(self) -> None:
        self._local = []

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        soft = self(batch)                                                                 # [B, P, L]
        raw, final = self.lm.answer(batch["prompts"], prefix=soft)
        self._local += list(zip(batch["ids"], raw, final))
        return batch["ids"]

    def on_predict_epoch_end(self) -> None:
        self.predictions = {qid: (raw, final) for qid, raw, final in self._local}
