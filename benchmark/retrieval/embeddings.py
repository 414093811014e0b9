"""The embedding service: texts -> vectors ``[N, D]`` of the shared embedder, each distinct (embedder, text)
encoded once, ever, through the ``embeddings`` table (a :class:`~benchmark.retrieval.table.ShardedTable` per
embedder identity; row key ``content_key(embedder.ident, text)``, the text actually encoded, query instruction
included). Reused across questions, splits and methods: the dense ranker and Persona-Plug's history table use it.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Sequence

import torch

from benchmark.cache.store import Store
from benchmark.retrieval.table import ShardedTable

ENCODE_BATCH = 2048                      # texts per embedder call (progress granularity)


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
