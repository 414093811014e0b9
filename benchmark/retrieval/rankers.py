"""Profile rankers (BM25, dense, recency, random) and the two caches they share: embeddings and rankings.

Every ranker answers the same question: given one LaMP question (its retrieval query and its user's profile), in
which order should the profile items be shown? Query and document come from the task spec
(``spec.retrieval_query(input)``, ``spec.document(item)``; reference 2.6), so no ranker knows a task by name.

* ``bm25``: rank_bm25 BM25Okapi semantics, exactly (benchmark/retrieval/bm25.py); per-user corpus, as in LaMP.
* ``dense``: the shared embedder (pooling and normalisation are the embedder's own, declared in its ``ident``);
  score = dot product of the vectors as encoded (cosine when the embedder normalises). Queries get the
  embedder's ``query_instruction`` (bge); ties keep profile order.
* ``recency``: latest first by ``date`` (``YYYY`` or ``YYYY-MM-DD``); when a profile has missing or unparsable
  dates (the pack's LaMP-6 and LaMP-7), profile order: later items are more recent. LaMP sorts ascending and
  takes the last k reversed, so equal dates put the later item first; so do we.
* ``random``: a permutation from an RNG seeded by (run seed, question id): reproducible, isolated from global
  RNG state. LaMP draws ``random.choices`` (with replacement, unseeded); we draw without replacement.

Caches (content-hash store, benchmark/store.py). Both are :class:`ShardedTable` s: rows keyed by content hash,
written as one shard file per batch of new rows under a folder per table identity, so a task's 20k history
items are a few files, not 20k. A process loads only the shards holding rows it asks for, once, and every
method of the process shares them.

* ``embeddings``: a table per embedder identity; row key ``content_key(embedder.ident, text)`` (the text actually
  encoded, instruction included). Reused across questions, splits and methods; Persona-Plug uses
  :func:`embed_texts` too.
* ``rankings``: a table per ranker identity (its config, and the embedder identity for dense); row key
  ``content_key(ranker.ident, query, documents, extra)`` where ``extra`` is what else decides the order (dates
  for recency, the question id for random). The full ranking is stored, so every k reuses it.

Hits and misses are counted per namespace on the Store (rows, not files) and go into the run row.
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from benchmark.retrieval.bm25 import bm25_rank, bm25_rank_many  # noqa: F401  (bm25_rank re-exported: the public API)
from benchmark.data.example import Example
from benchmark.cache.store import Store, content_key

if TYPE_CHECKING:
    from benchmark.data.tasks import TaskSpec

RETRIEVERS = ("bm25", "dense", "recency", "random")
ENCODE_BATCH = 2048                      # texts per embedder call (progress granularity)
_TABLES: dict[tuple[str, str, str], "_TableState"] = {}


# ---------------------------------------------------------------------------------------------- cache table
class _TableState:
    """What one process knows of a table: loaded rows, and which shard holds each key (from the sidecars)."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}
        self.where: dict[str, str] = {}       # key -> shard (indexed from the JSON sidecars, values not loaded)
        self.indexed: set[str] = set()
        self.loaded: set[str] = set()


class ShardedTable:
    """Content-addressed rows of one table (one embedder's vectors, one ranker's rankings) in shard files
    ``<cache>/<namespace>/<table key>/<xx>/<shard key>.pt``, written through the Store (atomic), each with a JSON
    sidecar naming the table and listing its keys. A lookup reads the sidecars, then loads only the shards that
    hold wanted keys, so memory follows what a run uses, not what the cache holds. Rows are shared in memory by
    every table object of the same identity in the process."""

    def __init__(self, store: Store, namespace: str, ident: dict[str, Any]):
        self.store, self.namespace, self.ident = store, namespace, ident
        self.key = content_key(ident)
        self.folder = f"{namespace}/{self.key}"
        self.state = _TABLES.setdefault((str(store.root.resolve()), namespace, self.key), _TableState())

    def _index(self) -> None:
        """Index shards written since the last look (by this or another process). A shard's sidecar is written
        before its data, so a shard whose ``.pt`` exists has its key list."""
        st = self.state
        for path in sorted((self.store.root / self.folder).glob("*/*.pt")):
            if path.stem not in st.indexed:
                for k in json.loads(path.with_suffix(".json").read_text())["keys"]:
                    st.where.setdefault(k, path.stem)
                st.indexed.add(path.stem)

    def _load(self, keys: set[str]) -> None:
        st = self.state
        for shard in sorted({st.where[k] for k in keys if k in st.where} - st.loaded):
            data = self.store.load(self.folder, shard)
            for i, k in enumerate(data["keys"]):
                st.rows.setdefault(k, data["values"][i])
            st.loaded.add(shard)

    def get_many(self, keys: Sequence[str], compute: Callable[[list[int]], Sequence[Any]]) -> list[Any]:
        """Values for ``keys``; ``compute(positions)`` gets the positions of distinct missing keys, in order."""
        st = self.state
        wanted = {k for k in keys if k not in st.rows}
        if wanted:
            if wanted - st.where.keys():
                self._index()
            self._load(wanted)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in st.rows:
                first.setdefault(k, i)
        self.store.hits[self.namespace] += len(set(keys)) - len(first)
        self.store.misses[self.namespace] += len(first)
        if first:
            new_keys, positions = list(first), list(first.values())
            values = compute(positions)
            if len(values) != len(positions):
                raise RuntimeError(f"{self.folder}: compute returned {len(values)} rows for {len(positions)} keys")
            shard = content_key(self.key, new_keys)
            self.store.save(self.folder, shard, {"keys": new_keys, "values": values},
                            meta={"table": self.ident, "rows": len(new_keys), "keys": new_keys})
            st.indexed.add(shard)
            st.loaded.add(shard)
            for i, k in enumerate(new_keys):
                st.rows[k] = values[i]
                st.where[k] = shard
        return [st.rows[k] for k in keys]


def forget_tables() -> None:
    """Drop what this process holds in memory (the next lookup reads the shards again, as a new process would)."""
    _TABLES.clear()


# ---------------------------------------------------------------------------------------------- embeddings
def text_keys(ident: dict[str, Any], texts: Sequence[str]) -> list[str]:
    """``[content_key(ident, t) for t in texts]``, hashing the identity once (100k texts: ~0.1 s, not ~1 s)."""
    head = hashlib.sha256()
    head.update(json.dumps(ident, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\x1f")
    out = []
    for t in texts:
        h = head.copy()
        h.update(json.dumps(t, ensure_ascii=False).encode() + b"\x1f")
        out.append(h.hexdigest())
    return out


def embed_texts(ctx_or_embedder: Any, store: Store, texts: Sequence[str], *, query: bool = False,
                progress: Callable | None = None) -> torch.Tensor:
    """Embeddings ``[N, D]`` of ``texts`` through the ``embeddings`` table: each distinct (embedder, text) is
    encoded once, ever. ``query=True`` prepends the embedder's ``query_instruction`` (the key is of the text
    actually encoded)."""
    embedder = getattr(ctx_or_embedder, "embedder", ctx_or_embedder)
    progress = progress or getattr(ctx_or_embedder, "progress", None)
    prefix = getattr(embedder, "query_instruction", "") if query else ""
    encoded = [prefix + t for t in texts]
    table = ShardedTable(store, "embeddings", {"embedder": embedder.ident})
    keys = text_keys(embedder.ident, encoded)

    def compute(positions: list[int]) -> torch.Tensor:
        todo = [encoded[i] for i in positions]
        batches = range(0, len(todo), ENCODE_BATCH)
        if progress is not None and len(batches) > 1:
            batches = progress(batches, total=len(batches), desc="encode")
        return torch.cat([embedder.encode(todo[s:s + ENCODE_BATCH]) for s in batches])   # [M, D]

    rows = table.get_many(keys, compute)
    return torch.stack(rows) if rows else torch.zeros(0, int(getattr(embedder, "dim", 0)))     # [N, D]


def dense_rank_many(ctx_or_embedder: Any, store: Store, queries: Sequence[str],
                    corpora: Sequence[Sequence[str]]) -> list[list[int]]:
    """Full rankings by dot product of query and document embeddings (stable: ties keep profile order)."""
    docs = list(dict.fromkeys(d for c in corpora for d in c))
    where = {d: i for i, d in enumerate(docs)}
    D = embed_texts(ctx_or_embedder, store, docs)                                 # [U, D]
    Q = embed_texts(ctx_or_embedder, store, list(queries), query=True)            # [B, D]
    out = []
    for b, corpus in enumerate(corpora):
        if not corpus:
            out.append([])
            continue
        scores = D[torch.tensor([where[d] for d in corpus])] @ Q[b]               # [N]
        out.append(torch.sort(scores, descending=True, stable=True).indices.tolist())
    return out


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
