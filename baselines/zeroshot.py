"""Zero-shot: the official LaMP input, unchanged, to the backbone (LaMP's "non-personalised" row).

Batched and length-sorted by the LanguageModel; greedy by default (``decoding.num_beams`` for beam search);
max new tokens from the task spec; the run's answer mode applies (benchmark.models.lm.answer).
"""
from __future__ import annotations

from typing import Sequence

from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example


@register_method("zeroshot")
class ZeroShot(Method):
    grid_order = 15
    def predict(self, examples: Sequence[Example]) -> Prediction:
        raw, final = self.ctx.lm.answer([ex.input for ex in examples])
        return Prediction(final, raw=raw)
