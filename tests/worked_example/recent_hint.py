"""recent_hint: the user's latest profile items, as a one-line hint in front of the official LaMP input.

The worked example of docs/adding_a_method.md: a prompting method whose prompts differ per task, added as one
module (this file; ``baselines/recent_hint.py`` in the repository) and one YAML (``recent_hint.yaml`` beside it;
``configs/methods/recent_hint.yaml``), touching nothing shared. The per-task wording lives in the YAML's ``tasks:``
block; a task without an entry gets the plain LaMP input (zero-shot).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from benchmark.contract.config import MethodConfig
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.data.tasks import render


@dataclass
class RecentHintConfig(MethodConfig):
    n_items: int = 2           # latest profile items in the hint
    hint: str = ""             # per task: the hint, with {items}; "" = the plain LaMP input
    item: str = ""             # per task: one profile item, from its fields

    def __post_init__(self) -> None:             # checked once, when the merged YAML becomes this object
        if self.n_items < 1:
            raise ValueError(f"method.n_items must be >= 1, got {self.n_items}")
        if self.hint and ("{items}" not in self.hint or not self.item):
            raise ValueError("method.hint needs {items} and an item template (method.item)")


@register_method("recent_hint")                  # <- the registration line
class RecentHint(Method):
    Config = RecentHintConfig
    cfg: RecentHintConfig                        # the validated object: typed fields, no casts
    grid_order = 25                              # a prompting method: after retrieval, before trained methods

    def prompt(self, ex: Example) -> str:
        if not self.cfg.hint or not ex.profile:
            return ex.input
        latest = ex.profile[-self.cfg.n_items:]                  # profiles are oldest first
        items = "; ".join(render(self.cfg.item, item) for item in latest)
        return f"{render(self.cfg.hint, {'items': items})} {ex.input}"

    def predict(self, examples: Sequence[Example]) -> Prediction:
        prompts = [self.prompt(ex) for ex in examples]
        raw, final = self.ctx.lm.answer(prompts)                 # the run's answer mode, as for every method
        return Prediction(final, raw=raw, prompts=prompts)
