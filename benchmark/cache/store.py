"""Content-hash store for expensive artefacts: embeddings, rankings, summaries, adapters.

A key is the sha256 of a canonical JSON of *everything that determines the value* (the input texts, the model
id and file hash, the relevant config), never of a name alone. Each namespace is a folder under the cache dir;
each entry is written atomically (temp file + rename) with a JSON sidecar that records what went into the key,
so a stale entry can be explained and a half-written one never read. Several processes (the ranks of a distributed
run, the shards of a grid) may write the same key at once: every writer uses its own temp file or folder and the
renames are atomic, so a reader sees one whole copy (the key fixes the content) and never a mix. Hits and misses are counted per namespace
and written into the run row.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch


def content_key(*parts: Any) -> str:
    """sha256 over the canonical JSON of ``parts`` (dicts sorted, tensors by their bytes)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(p, (bytes, bytearray)):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_key(text: str) -> str:
    """sha256 of a text's UTF-8 bytes (prompt hashes in samples.jsonl and summaries.jsonl)."""
    return sha256_bytes(text.encode())


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """The one file hasher: sha256 of a file's bytes, read in chunks (data files, model files, downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class Store:
    """``store.get_or_compute("rankings", key, compute, meta)``; values are anything ``torch.save`` takes."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    def path(self, namespace: str, key: str, suffix: str = ".pt") -> Path:
        return self.root / namespace / key[:2] / f"{key}{suffix}"

    def has(self, namespace: str, key: str) -> bool:
        return self.path(namespace, key).exists()

    def load(self, namespace: str, key: str) -> Any:
        return torch.load(self.path(namespace, key), map_location="cpu", weights_only=False)

    def save(self, namespace: str, key: str, value: Any, meta: dict | None = None) -> None:
        import io
        buf = io.BytesIO()
        torch.save(value, buf)
        if meta is not None:
            atomic_write_text(self.path(namespace, key, ".json"), json.dumps(meta, sort_keys=True, default=str, indent=1))
        atomic_write_bytes(self.path(namespace, key), buf.getvalue())

    def get_or_compute(self, namespace: str, key: str, compute: Callable[[], Any], meta: dict | None = None) -> Any:
        if self.has(namespace, key):
            self.hits[namespace] += 1
            return self.load(namespace, key)
        self.misses[namespace] += 1
        value = compute()
        self.save(namespace, key, value, meta)
        return value

    def dir(self, namespace: str, key: str) -> Path:
        """A folder entry (e.g. a LoRA adapter saved by peft), written with :meth:`save_dir`."""
        return self.root / namespace / key[:2] / key

    def save_dir(self, namespace: str, key: str, write: Callable[[Path], Any]) -> Any:
        """``write(folder)`` fills a private temp folder, which is then renamed into place; returns what ``write``
        returned. When another writer of the same key renamed first, its whole copy stays and this one is
        discarded (os.rename onto a non-empty folder fails rather than merging)."""
        final = self.dir(namespace, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}.", suffix=".tmp"))
        try:
            out = write(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def stats(self) -> dict[str, dict[str, int]]:
        names = set(self.hits) | set(self.misses)
        return {n: {"hits": self.hits[n], "misses": self.misses[n]} for n in sorted(names)}
