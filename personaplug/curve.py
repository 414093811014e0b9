"""The evidence a Persona-Plug training leaves in its row: what was learnt, how fast, and whether attention moved.

Two series, both small enough for a row (tens of points, not thousands):

* ``steps``: every optimizer step's training loss (the mean of its micro-batches) and the learning rate it was
  taken at (and the input encoder's own rate when it has one). :meth:`TrainingCurve.compact` averages
  consecutive steps into at most ``max_points`` bins, so a long run still gives a short, faithful curve;
* ``checks``: at every validation check, the loss on the held-out *training* users (the checkpoint and
  early-stopping signal; never the evaluation split), the attention entropy over their history items (mean and
  spread) beside the uniform entropy ``log n`` (equal means attention is the mean of the history), the mean norm of
  each soft token beside the LLM's mean input-embedding norm, and the attention temperature.

A single first or last batch is not evidence: the length-grouped sampler puts the longest batch first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


@dataclass
class TrainingCurve:
    steps: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def step(self, step: int, loss: float, lr: float, encoder_lr: float | None = None) -> None:
        point = {"step": int(step), "train_loss": float(loss), "lr": float(lr)}
        if encoder_lr is not None:
            point["encoder_lr"] = float(encoder_lr)
        self.steps.append(point)

    def validation(self, step: int, epoch: int, loss: float, norms: list[float], attn: torch.Tensor | None,
                   plug) -> dict[str, Any]:
        """One check: ``norms`` per soft token ``[P]``; ``attn`` per held-out example (entropy, log n) ``[N, 2]``."""
        point: dict[str, Any] = {"step": int(step), "epoch": int(epoch), "val_loss": _r(loss, 5)}
        names = (["inst_norm"] if plug.use_instruction else []) + \
            [f"user_norm{'' if i == 0 else i}" for i in range(plug.n_tokens - int(plug.use_instruction))]
        point.update({n: _r(v, 3) for n, v in zip(names, norms)})
        if attn is not None:
            many = attn[attn[:, 1] > 0]                                    # examples with >= 2 history items
            if len(many):
                ent, uni = many[:, 0], many[:, 1]
                point.update(attn_entropy=_r(ent.mean()), attn_entropy_sd=_r(ent.std(unbiased=False)),
                             attn_uniform=_r(uni.mean()), attn_ratio=_r((ent / uni).mean()))
        temp = plug.attention_temperature() if plug.mode == "attention" and plug.use_user else None
        if temp is not None:
            point["temperature"] = _r(float(temp))
        self.checks.append(point)
        return point

    def compact(self, max_points: int = 40) -> list[dict[str, Any]]:
        """Consecutive steps averaged into at most ``max_points`` bins (each point: the bin's last step, mean loss,
        the lr at its last step)."""
        n = len(self.steps)
        if n <= max_points:
            return [{k: _r(v, 6) if isinstance(v, float) else v for k, v in p.items()} for p in self.steps]
        out = []
        for b in range(max_points):
            part = self.steps[b * n // max_points:(b + 1) * n // max_points]
            last = part[-1]
            out.append({**{k: _r(v, 6) if isinstance(v, float) else v for k, v in last.items()},
                        "train_loss": _r(sum(p["train_loss"] for p in part) / len(part), 6), "n_steps": len(part)})
        return out

    def summary(self) -> dict[str, Any]:
        """The few numbers a row column can hold: first and last check, the best held-out loss."""
        out: dict[str, Any] = {"optimizer_steps": len(self.steps)}
        if self.steps:
            k = max(1, len(self.steps) // 10)
            out["train_loss_first10pct"] = _r(sum(p["train_loss"] for p in self.steps[:k]) / k)
            out["train_loss_last10pct"] = _r(sum(p["train_loss"] for p in self.steps[-k:]) / k)
        if self.checks:
            first, last = self.checks[0], self.checks[-1]
            best = min(self.checks, key=lambda p: p["val_loss"])
            out.update(val_loss_first=first["val_loss"], val_loss_last=last["val_loss"], val_loss_best=best["val_loss"],
                       val_best_step=best["step"])
            for key in ("attn_entropy", "attn_entropy_sd", "attn_uniform", "inst_norm", "user_norm"):
                if key in last:
                    out[f"{key}_first"], out[f"{key}_last"] = first.get(key), last[key]
        return out
