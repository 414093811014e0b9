"""The cache engine of retrieval: :class:`ShardedTable`, content-addressed rows in shard files of the Store.

Embeddings (``benchmark/retrieval/embeddings.py``) and rankings (``benchmark/retrieval/rankers.py``) are both
tables: rows keyed by content hash, written as one shard file per batch of new rows under a folder per table
identity, so a task's 20k history items are a few files, not 20k. A process loads only the shards holding rows it
asks for, once, and every method of the process shares them. Hits and misses are counted per namespace on the
Store (rows, not files) and go into the run row.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from benchmark.cache.store import Store, content_key

_TABLES: dict[tuple[str, str, str], "_TableState"] = {}


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
