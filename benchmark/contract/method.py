"""The interface a personalisation method implements.

A method never loads a model, opens a cache or writes a file by itself: the :class:`~benchmark.contract.context.Context`
carries the resolved config, the task spec, the shared backbone and embedder (loaded once per process), the
content-hash store, the data module (per-user histories) and the progress reporter.

    fit(train)          learn whatever the method learns (no-op for zero-shot, RAG, heuristics)
    predict(examples)   a :class:`~benchmark.contract.prediction.Prediction`: one final answer per example, same
                        order (the run's answer mode applied), with the raw outputs and the prompts it used
    cost()              trainable parameters, stored bytes per user, anything else worth a cost column
    diagnostics()       run-level evidence the run folder keeps (training curves, per-user logs, summaries):
                        ``{file name: content}``, a ``.jsonl`` name mapping to a list of records and a ``.json``
                        name to one object; the run's ``record`` step writes them, the method writes nothing
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from benchmark.contract.config import MethodConfig, instantiate
from benchmark.contract.prediction import Prediction
from benchmark.data.example import Example

if TYPE_CHECKING:
    from benchmark.contract.context import Context


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
        self.cfg = instantiate(self.Config, ctx.cfg.method, f"configs/methods/{self.name}.yaml")

    @classmethod
    def unsupported_reason(cls, spec) -> str | None:
        """Why the method does not apply to a task (e.g. a LaMP-1-only rule), or None; the grid skips such pairs."""
        return None

    def fit(self, train: Sequence[Example]) -> None:
        """Default: nothing to learn."""

    def predict(self, examples: Sequence[Example]) -> Prediction:
        raise NotImplementedError

    def cost(self) -> dict[str, Any]:
        return {"trainable_params": 0, "stored_bytes_per_user": 0}

    def diagnostics(self) -> dict[str, Any]:
        """Run-level evidence for the run folder, ``{file name: records or object}``; default none."""
        return {}
