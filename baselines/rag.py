"""Retrieval-augmented baselines (LaMP, Salemi et al. 2023; the retrieval rows Persona-Plug compares against).

Each method ranks the question's own profile (query and documents from the task spec, as LaMP's
``prompts/prompts.py``), takes the ``k`` best items and builds LaMP's prompt under the token budget
(benchmark/models/prompts.py: the task input stays whole, retrieved items are cut instead and counted in
``cost.n_rag_items_cut``), then asks the shared backbone under the run's answer mode. Nothing is trained;
rankings and embeddings are cached in the store.

    bm25     rank_bm25 BM25Okapi semantics over whitespace tokens (k1, b, epsilon as LaMP's library defaults)
    dense    the run's embedder (configs/base.yaml ``embedder``): MiniLM here, Contriever or bge by id on a GPU
    recency  latest ``date`` first; profile order where dates are missing
    random   a seeded permutation per question (run seed, question id)

``k`` is swept by the YAML (``sweep: {k: [1, 4]}``): one run row per value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from benchmark.contract.config import MethodConfig
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.models.prompts import rag_prompt_set
from benchmark.retrieval.rankers import Ranker, make_ranker


@dataclass
class RagConfig(MethodConfig):
    k: int = 1                       # profile items in the prompt (LaMP: 1 for zero-shot LLMs; 1, 2, 4 ablations)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"method.k must be >= 1, got {self.k}")


@dataclass
class BM25Config(RagConfig):
    k1: float = 1.5                  # rank_bm25 defaults, as LaMP uses them
    b: float = 0.75
    epsilon: float = 0.25            # floor for negative idf: epsilon * average idf


@dataclass
class RandomConfig(RagConfig):
    seed: int | None = None          # None: the run's seed


class RagMethod(Method):
    """Rank, take k, prompt, answer. Subclasses name their retriever and its options."""
    Config: ClassVar[type] = RagConfig
    cfg: RagConfig
    retriever: ClassVar[str] = ""
    grid_order: ClassVar[int] = 20           # after the LLM-free references, before methods reusing the caches

    def ranker_options(self) -> dict[str, Any]:
        return {}

    def ranker(self) -> Ranker:
        return make_ranker(self.retriever, self.ctx, **self.ranker_options())

    def predict(self, examples: Sequence[Example]) -> Prediction:
        built = rag_prompt_set(self.ctx, examples, self.ranker(), self.cfg.k)
        self.items_cut = sum(built.items_cut)
        raw, final = self.ctx.lm.answer(built.prompts)
        return Prediction(final, raw=raw, prompts=built.prompts, extras={"rag_items_cut": built.items_cut})

    def cost(self) -> dict[str, Any]:
        return {"trainable_params": 0, "stored_bytes_per_user": 0, "retriever": self.retriever, "k": self.cfg.k,
                "n_rag_items_cut": int(getattr(self, "items_cut", 0))}


@register_method("bm25")
class BM25(RagMethod):
    Config = BM25Config
    caches = ("bm25",)
    retriever = "bm25"

    def ranker_options(self) -> dict[str, Any]:
        return {"k1": self.cfg.k1, "b": self.cfg.b, "epsilon": self.cfg.epsilon}


@register_method("dense")
class Dense(RagMethod):
    caches = ("embeddings",)
    retriever = "dense"


@register_method("recency")
class Recency(RagMethod):
    retriever = "recency"


@register_method("random")
class Random(RagMethod):
    Config = RandomConfig
    retriever = "random"

    def ranker_options(self) -> dict[str, Any]:
        return {} if self.cfg.seed is None else {"seed": self.cfg.seed}
