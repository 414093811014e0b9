"""What ``Method.predict`` returns: everything the run records about its answers, and nothing read off the method.

    outputs   the final answers, one per example, in the order of the examples (what the scorer sees)
    raw       what the model produced before the run's answer mode was applied (default: ``outputs``)
    prompts   the text the model read for each example (default: the example's own input)
    extras    optional per-example fields the run folder keeps beside each sample (lists of the same length),
              e.g. Persona-Plug's attention entropy or the number of retrieved items cut from a prompt
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass
class Prediction:
    outputs: list[str]
    raw: list[str] | None = None
    prompts: list[str] | None = None
    extras: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.outputs = [str(o) for o in self.outputs]
        n = len(self.outputs)
        for name, values in (("raw", self.raw), ("prompts", self.prompts), *self.extras.items()):
            if values is not None and len(values) != n:
                raise ValueError(f"Prediction.{name} has {len(values)} entries for {n} outputs")

    def raw_or_outputs(self) -> list[str]:
        return list(self.raw) if self.raw is not None else list(self.outputs)

    def prompts_or(self, inputs: Sequence[str]) -> list[str]:
        return list(self.prompts) if self.prompts is not None else list(inputs)
