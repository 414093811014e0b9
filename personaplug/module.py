"""The thin LightningModule around :class:`~personaplug.model.PersonaPlug`, and the Trainer built from config.

Training (the official ``code/main_profile.py`` + ``code/run_all_t5.sh``): the frozen LLM's own cross-entropy on the
target tokens with the soft tokens in front of the prompt (``lm.loss(prompts, targets, prefix=...)``); AdamW
(lr 1e-4, weight decay 1e-4), linear warmup over 5% of the optimizer steps then linear decay to 0 (the Hugging
Face ``linear`` schedule), gradient-norm clipping at 1.0 (the HF Trainer default the official run inherits),
epochs and gradient accumulation from the method config.

The LLM is *not* a submodule: it is shared by every method of a process, stays in eval mode (no dropout;
the official T5 ran with its dropout on, see docs/personaplug.md), is never checkpointed or wrapped by a
distributed strategy, and its weights never receive a gradient (checked after the first backward).

Checkpoint rule: ``select="last"`` evaluates the weights after the last optimizer step (the official code
evaluates the final model). ``select="val_loss"`` computes the loss on a held-out slice of the *training* users
(never the evaluation split) ``val_checks_per_epoch`` times an epoch and keeps the trainable state of the best
check; ``patience`` stops training once that loss has not fallen for so many checks. Only trainable parameters
are kept.

Evidence (:class:`~personaplug.curve.TrainingCurve`): the loss and learning rate of every optimizer step, and at
every validation check the held-out loss, the attention entropy over history items beside the uniform entropy
``log n``, and the soft-token norms. Lightning's logger gets ``train_loss``, ``lr``, ``val_loss`` and
``attn_entropy``.

Prediction goes through ``Trainer.predict`` on this process's device over the questions it is given, answering
with ``lm.answer`` (the run's answer mode). Under a launcher the run has already split the questions over the
ranks and gathers the answers itself (benchmark/runs/ranks.py): the module neither shards nor gathers.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torchmetrics import CatMetric, MeanMetric

from benchmark.models.devices import launched, local_strategy
from benchmark.models.schedule import linear_warmup_decay
from personaplug.curve import TrainingCurve
from personaplug.model import PersonaPlug, attention_entropy


def resolve_precision(precision: str) -> str:
    """``auto`` = bf16-mixed on a GPU, 32 on CPU."""
    if precision == "auto":
        return "bf16-mixed" if torch.cuda.is_available() else "32"
    return str(precision)


def make_trainer(cfg: Any, *, epochs: int | None = None, predict: bool = False, validate: bool = False,
                 logger: Any = False, callbacks: list | None = None, device: torch.device | None = None) -> L.Trainer:
    """A Lightning Trainer from the method config (accelerator, devices, strategy, precision, epochs/steps).

    ``logger``: a Lightning logger for train_loss / val_loss / lr (``Context.train_logger``); ``callbacks``: e.g.
    the grid display's step bar (``Context.train_bar``). With ``validate`` the held-out training users are scored
    ``val_checks_per_epoch`` times an epoch, and ``patience`` (if set) stops training after that many checks
    without a lower ``val_loss``. The Trainer stays on one device (``method.devices`` must be 1); under a
    launcher, on this rank's ``device``: the run fits on rank 0 and splits prediction over the ranks itself
    (benchmark/runs/ranks.py)."""
    if str(cfg.devices) not in ("1", "auto"):
        raise ValueError(f"personaplug: method.devices={cfg.devices}: a Trainer would start copies of the whole "
                         f"command; launch the run with torchrun or srun instead (docs/scaling.md)")
    kw: dict[str, Any] = {}
    callbacks = list(callbacks or [])
    place: dict[str, Any] = dict(accelerator=cfg.accelerator, devices=1, strategy=cfg.strategy)
    if launched() and device is not None:
        place = dict(strategy=local_strategy(device))
    if not predict:
        if validate and cfg.patience is not None:
            callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience,
                                           check_on_train_epoch_end=False))
        kw = dict(max_epochs=cfg.epochs if epochs is None else epochs, max_steps=cfg.max_steps,
                  accumulate_grad_batches=cfg.accumulate_grad_batches, gradient_clip_val=cfg.grad_clip,
                  limit_val_batches=1.0 if validate else 0, num_sanity_val_steps=0, log_every_n_steps=1,
                  val_check_interval=1.0 / max(1, cfg.val_checks_per_epoch))
    return L.Trainer(**place, precision=resolve_precision(cfg.precision), logger=logger, enable_checkpointing=False,
                     enable_model_summary=False, enable_progress_bar=cfg.progress_bar,
                     use_distributed_sampler=not predict and not launched(), inference_mode=False,
                     callbacks=callbacks, **kw)


SELECT = ("last", "val_loss")


class PlugModule(L.LightningModule):
    def __init__(self, plug: PersonaPlug, lm, *, lr: float = 1e-4, weight_decay: float = 1e-4,
                 warmup_ratio: float = 0.05, max_target_tokens: int = 128, select: str = "last",
                 encoder_lr: float | None = None, placement: str = "prefix"):
        super().__init__()
        if select not in SELECT:
            raise ValueError(f"personaplug/module.py: select must be one of {SELECT}, got {select!r}")
        self.plug = plug
        self.lm = lm                                     # TaskLM: a plain object, so not a registered submodule
        if any(p.requires_grad for p in self._llm_params()):
            raise RuntimeError("personaplug/module.py: the LLM has trainable weights; Persona-Plug needs it frozen")
        self.lr, self.weight_decay, self.warmup_ratio, self.encoder_lr = lr, weight_decay, warmup_ratio, encoder_lr
        self.max_target_tokens, self.select, self.placement = max_target_tokens, select, placement
        self.curve = TrainingCurve()
        self.val_loss = MeanMetric()                     # torchmetrics: example-weighted
        self.val_attn = CatMetric()                      # per-example (entropy, uniform entropy) of the held-out users
        self.val_norms = CatMetric()                     # per-example soft-token norms [N, P]
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        self.predictions: dict[str, tuple[str, str]] = {}
        self.predicted_entropy: dict[str, tuple[float, float]] = {}
        self._local: list[tuple[str, str, str, float, float]] = []
        self._step_losses: list[float] = []
        self._checked_llm_grads = False

    def _llm_params(self):
        return self.lm.model.parameters()

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        labels = batch.get("labels") if self.plug.n_labels else None                     # [B, H] or None
        return self.plug(batch["history"], batch["mask"], batch["queries"], labels)        # [B, P, L]

    def batch_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        soft = self(batch)                                                                 # [B, P, L]
        loss = self.lm.loss(batch["prompts"], batch["targets"], prefix=soft, max_target_tokens=self.max_target_tokens,
                            placement=self.placement)
        return loss, soft

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
        loss, _ = self.batch_loss(batch)
        self._step_losses.append(float(loss.detach()))
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """One point per optimizer step, the same in the row's curve and Lightning's logger: the mean loss of its
        micro-batches and the plug's learning rate (the input encoder's own rate, when it trains, beside it)."""
        lrs = [g["lr"] for g in optimizer.param_groups]
        loss = sum(self._step_losses) / max(1, len(self._step_losses))
        enc_lr = lrs[0] if self.encoder_lr is not None else None
        self.curve.step(self.global_step + 1, loss, lrs[-1], enc_lr)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.log("lr", lrs[-1], on_step=True, on_epoch=False)
        if enc_lr is not None:
            self.log("encoder_lr", enc_lr, on_step=True, on_epoch=False)
        self._step_losses = []

    def on_after_backward(self) -> None:
        if not self._checked_llm_grads:
            leaked = [n for n, p in self.lm.model.named_parameters() if p.grad is not None]
            if leaked:
                raise RuntimeError(f"personaplug/module.py: gradient reached LLM weights {leaked[:3]}")
            self._checked_llm_grads = True

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, soft = self.batch_loss(batch)
        n = len(batch["ids"])
        self.val_loss.update(loss.detach(), weight=n)
        self.val_norms.update(soft.detach().float().norm(dim=-1))                          # [B, P]
        if self.plug.last_weights is not None and self.plug.mode == "attention":
            ent, uni = attention_entropy(self.plug.last_weights, batch["mask"].to(soft.device))   # [B], [B]
            self.val_attn.update(torch.stack([ent, uni], dim=1))                           # [B, 2]

    def on_validation_epoch_end(self) -> None:
        val = float(self.val_loss.compute())
        norms = self.val_norms.compute().view(-1, self.plug.n_tokens).mean(0).tolist()      # [P]
        self.val_loss.reset(), self.val_norms.reset()
        attn = None
        if self.val_attn.update_count:
            attn = self.val_attn.compute().view(-1, 2)                                     # [N, 2]
            self.val_attn.reset()
        point = self.curve.validation(self.global_step, self.current_epoch, val, norms, attn, self.plug)
        self.log("val_loss", val)
        if point.get("attn_entropy") is not None:
            self.log("attn_entropy", point["attn_entropy"])
        if self.select == "val_loss" and (self.best is None or val < self.best[0]):
            self.best = (val, self.global_step, self.plug.trainable_state())

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.plug.param_groups(self.weight_decay, self.lr, self.encoder_lr), lr=self.lr)
        factor = linear_warmup_decay(self.trainer.estimated_stepping_batches, self.warmup_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def selected_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The checkpoint that is evaluated, and which one it is."""
        if self.select == "val_loss" and self.best is not None:
            return self.best[2], {"select": "val_loss", "step": self.best[1], "val_loss": self.best[0]}
        return self.plug.trainable_state(), {"select": "last", "step": self.global_step}

    # ------------------------------------------------------------------ prediction
    def on_predict_epoch_start(self) -> None:
        self._local = []

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        soft = self(batch)                                                                 # [B, P, L]
        raw, final = self.lm.answer(batch["prompts"], prefix=soft, placement=self.placement)
        ent = uni = [float("nan")] * len(raw)
        if self.plug.last_weights is not None and self.plug.mode == "attention":
            e, u = attention_entropy(self.plug.last_weights, batch["mask"].to(soft.device))
            ent, uni = e.tolist(), u.tolist()
        self._local += list(zip(batch["ids"], raw, final, ent, uni))
        return batch["ids"]

    def on_predict_epoch_end(self) -> None:
        """The (id, raw, final) answers of the questions this process was given, and their attention entropy."""
        self.predictions, self.predicted_entropy = {}, {}
        for qid, raw, final, ent, uni in self._local:
            self.predictions[qid] = (raw, final)
            self.predicted_entropy[qid] = (ent, uni)
