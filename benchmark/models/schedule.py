"""The one learning-rate schedule of the suite's trainers: linear warm-up, then linear decay to 0.

Persona-Plug (``personaplug/module.py``) and the LoRA trainer (``baselines/lora_trainer.py``) both use it. They
differ in one deliberate point, passed as ``warmup_from_zero``:

* ``True``  (Hugging Face ``get_linear_schedule_with_warmup``): step 0 runs at lr 0, step ``w`` reaches the full lr;
  ``w = ceil(ratio x total)``.
* ``False`` (the LoRA trainer, which runs a handful of steps per user): step 0 already runs at ``lr / w``, so no
  optimiser step is wasted at lr 0; ``w`` is at least 1 and the decay has at least one step.
"""
from __future__ import annotations

import math
from typing import Callable


def linear_warmup_decay(total_steps: int, warmup_ratio: float, *,
                        warmup_from_zero: bool = True) -> Callable[[int], float]:
    """An LR multiplier for ``torch.optim.lr_scheduler.LambdaLR``: 0 (or 1/w) -> 1 over the warm-up, then -> 0."""
    total = max(int(total_steps), 1)
    warmup = math.ceil(warmup_ratio * total)
    shift = 0 if warmup_from_zero else 1
    if not warmup_from_zero:
        warmup = max(1, warmup)
        total = max(total, warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + shift) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor
