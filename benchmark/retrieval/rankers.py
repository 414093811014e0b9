"""Profile rankers (BM25, dense, recency, random): the order in which a question's profile items are shown.

Every ranker answers the same question: given one LaMP question (its retrieval query and its user's profile), in
which order should the profile items be shown? Query and document come from the task spec
(``spec.retrieval_query(input)``, ``spec.document(item)``, as LaMP's ``prompts/prompts.py``), so no ranker knows a
task by name.

* ``bm25``: rank_bm25 BM25Okapi semantics, exactly (benchmark/retrieval/bm25.py); per-user corpus, as in LaMP.
* ``dense``: the shared embedder (pooling and normalisation are the embedder's own, declared in its ``ident``);
  score = dot product of the vectors as encoded (cosine when the embedder normalises). Queries get the
  embedder's ``query_instruction`` (bge); ties keep profile order.
* ``recency``: latest first by ``date`` (``YYYY`` or ``YYYY-MM-DD``); when a profile has missing or unparsable
  dates (the pack's LaMP-6 and LaMP-7), profile order: later items are more recent. LaMP sorts ascending and
  takes the last k reversed, so equal dates put the later item first; so do we.
* ``random``: a permutation from an RNG seeded by (run seed, question id): reproducible, isolated from global
  RNG state. LaMP draws ``random.choices`` (with replacement, unseeded); we draw without replacement.

The rankings are cached in a :class:`~benchmark.retrieval.table.ShardedTable` (``rankings``: a table per ranker
identity, its config and the embedder identity for dense; row key ``content_key(ranker.ident, query, documents,
extra)`` where ``extra`` is what else decides the order: dates for recency, the question id for random). The full
ranking is stored, so every k reuses it. Hits and misses are counted per namespace on the Store and go into the row.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from benchmark.cache.store import Store, content_key
from benchmark.data.example import Example
from benchmark.retrieval.bm25 import bm25_rank_many
from benchmark.retrieval.embeddings import dense_rank_many
from benchmark.retrieval.table import ShardedTable

if TYPE_CHECKING:
    from benchmark.data.tasks import TaskSpec

RETRIEVERS = ("bm25", "dense", "recency", "random")


# ---------------------------------------------------------------------------------------------- heuristics
def parse_date(value: Any) -> tuple[int, ...] | None:
    """``"2017"`` -> (2017,), ``"2006-03-11"`` -> (2006, 3, 11); empty, missing or other formats -> None."""
    text = "" if value is None else str(value).strip()
    try:
        return tuple(int(p) for p in text.split("-")) if text else None
    except ValueError:
        return None


def recency_rank(items: Sequence[dict[str, Any]]) -> list[int]:
    """Latest first; profile order (later = more recent) unless every item has a parsable date."""
    dates = [parse_date(it.get("date")) for it in items]
    if items and all(d is not None for d in dates):
        return sorted(range(len(items)), key=lambda i: (dates[i], i), reverse=True)
    return list(range(len(items)))[::-1]


def random_rank(n: int, seed: int, question_id: str) -> list[int]:
    """A permutation of range(n) that depends only on (seed, question id)."""
    digest = hashlib.sha256(f"{seed}\x1f{question_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.permutation(n).tolist()


# ---------------------------------------------------------------------------------------------- rankers
class Ranker:
    """``ident`` says everything that decides a ranking besides (query, documents, extra); bump ``version`` when
    a rule changes, so cached rankings of the old rule are not reused."""
    name = ""
    version = 1

    def __init__(self, **params: Any):
        self.params = params

    @property
    def ident(self) -> dict[str, Any]:
        return {"retriever": self.name, "version": self.version, **self.params}

    def extra(self, ex: Example) -> Any:
        return None

    def compute(self, queries: list[str], corpora: list[list[str]], examples: Sequence[Example]) -> list[list[int]]:
        raise NotImplementedError


class BM25Ranker(Ranker):
    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        super().__init__(k1=float(k1), b=float(b), epsilon=float(epsilon), tokens="str.split")

    def compute(self, queries, corpora, examples):
        p = self.params
        return bm25_rank_many(queries, corpora, k1=p["k1"], b=p["b"], epsilon=p["epsilon"])


class DenseRanker(Ranker):
    name = "dense"

    def __init__(self, ctx_or_embedder: Any, store: Store):
        self.source, self.store = ctx_or_embedder, store
        embedder = getattr(ctx_or_embedder, "embedder", ctx_or_embedder)
        super().__init__(embedder=dict(embedder.ident), similarity="dot",
                         query_instruction=getattr(embedder, "query_instruction", ""))

    def compute(self, queries, corpora, examples):
        return dense_rank_many(self.source, self.store, queries, corpora)


class RecencyRanker(Ranker):
    name = "recency"

    def extra(self, ex):
        return [it.get("date") for it in ex.profile]

    def compute(self, queries, corpora, examples):
        return [recency_rank(ex.profile) for ex in examples]


class RandomRanker(Ranker):
    name = "random"

    def __init__(self, seed: int = 0):
        super().__init__(seed=int(seed), rng="numpy.PCG64(sha256(seed, question id))")

    def extra(self, ex):
        return ex.id

    def compute(self, queries, corpora, examples):
        return [random_rank(len(ex.profile), self.params["seed"], ex.id) for ex in examples]


def make_ranker(name: str, ctx: Any, **params: Any) -> Ranker:
    """The ranker called ``name`` for a run context (dense uses ``ctx.embedder``; random ``ctx.seed``)."""
    if name == "bm25":
        return BM25Ranker(**params)
    if name == "dense":
        return DenseRanker(ctx, ctx.store)
    if name == "recency":
        return RecencyRanker()
    if name == "random":
        return RandomRanker(seed=params.get("seed", ctx.seed))
    raise KeyError(f"unknown retriever {name!r}; known: {', '.join(RETRIEVERS)}")


def rank_examples(store: Store, spec: "TaskSpec", ranker: Ranker, examples: Sequence[Example]) -> list[list[int]]:
    """Full profile ranking (indices into ``ex.profile``, best first) per example, through the rankings table."""
    queries = [spec.retrieval_query(ex.input) for ex in examples]
    corpora = [[spec.document(it) for it in ex.profile] for ex in examples]
    ident = ranker.ident
    keys = [content_key(ident, q, c, ranker.extra(ex)) for q, c, ex in zip(queries, corpora, examples)]

    def compute(positions: list[int]) -> list[np.ndarray]:
        ranked = ranker.compute([queries[i] for i in positions], [corpora[i] for i in positions],
                                [examples[i] for i in positions])
        for i, r in zip(positions, ranked):
            if sorted(r) != list(range(len(corpora[i]))):
                raise RuntimeError(f"{ranker.name} ranker: question {examples[i].id} got {r[:8]}..., "
                                   f"not a permutation of its {len(corpora[i])} profile items")
        return [np.asarray(r, dtype=np.int32) for r in ranked]

    return [r.tolist() for r in ShardedTable(store, "rankings", ident).get_many(keys, compute)]


def retrieve_top_k(ctx: Any, examples: Sequence[Example], ranker: Ranker | str, k: int) -> list[list[dict[str, Any]]]:
    """The ``k`` best profile items per example (best first) by ``ranker`` (a Ranker or a retriever name)."""
    if isinstance(ranker, str):
        ranker = make_ranker(ranker, ctx)
    rankings = rank_examples(ctx.store, ctx.spec, ranker, examples)
    return [[ex.profile[i] for i in order[:k]] for ex, order in zip(examples, rankings)]
