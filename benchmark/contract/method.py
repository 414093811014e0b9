"""The interface a personalisation method implements, and the context it is handed.

A method never loads a model, opens a cache or reads a file by itself: the :class:`Context` carries the
resolved config, the task spec, the shared backbone and embedder (loaded once per process), the content-hash
store, the data module (per-user histories) and the progress reporter.

    fit(train)          learn whatever the method learns (no-op for zero-shot, RAG, heuristics)
    predict(examples)   one output string per example, same order; the answer mode of the run applies
    cost()              trainable parameters, stored bytes per user, anything else worth a cost column
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from benchmark.data.example import Example

if TYPE_CHECKING:
    from benchmark.contract.context import Context


@dataclass
class MethodConfig:
    """Schema of the ``method:`` node; subclasses add their fields (unknown keys are errors)."""
    name: str = ""


class Method:
    name: ClassVar[str] = ""
    Config: ClassVar[type] = MethodConfig
    uses_backbone: ClassVar[bool] = True   # False for the LLM-free reference baselines
    grid_order: ClassVar[int] = 50         # position in a grid: cache-filling methods (retrieval) run first
    shard_by: ClassVar[str] = "question"   # question | user: the unit a distributed run splits over ranks
    caches: ClassVar[tuple[str, ...]] = () # shared store contents it fills or reads (bm25 rankings, embeddings,
                                           # summaries): a sharded grid keeps a task's runs that share one together

    def __init__(self, ctx: "Context"):
        self.ctx = ctx
        self.cfg = ctx.cfg.method

    @classmethod
    def unsupported_reason(cls, spec) -> str | None:
        """Why the method does not apply to a task (e.g. a LaMP-1-only rule), or None; the grid skips such pairs."""
        return None

    def fit(self, train: Sequence[Example]) -> None:
        """Default: nothing to learn."""

    def predict(self, examples: Sequence[Example]) -> list[str]:
        raise NotImplementedError

    def cost(self) -> dict[str, Any]:
        return {"trainable_params": 0, "stored_bytes_per_user": 0}
