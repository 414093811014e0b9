"""Run rows and run folders: provenance, atomic writes, resume keys.

A finished run leaves
    results/runs/<run_id>/config.yaml       the resolved config (exactly what produced the numbers)
    results/runs/<run_id>/predictions.json  official LaMP prediction format ({"task", "golds": [{"id","output"}]})
    results/runs/<run_id>/samples.jsonl     per example: id, user, prompt hash, raw and final output, gold, scores
and appends ONE line to results/runs.jsonl. Every file is written to a temp file and renamed, and the row is
appended last with a single write + fsync, so a kill at any moment leaves either no row or a whole row, and never
a half-written file. Several processes (grid shards, ranks of a SLURM array) may append to one runs.jsonl: each
append holds an exclusive ``fcntl.flock`` on the file for its write, so rows never interleave. The resume key is
(task, method, variant, resolved-config hash, data digest, source tree): the source tree key (:func:`git_state`)
hashes the tracked files that can change a row (``CODE_PATHS``: the packages and configs), so committing results,
docs, tests or scripts does not invalidate finished rows.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from benchmark.cache.store import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = {"config.yaml", "samples.jsonl", "prompts.jsonl", "predictions.json", "golds.json", "row.json"}
PACKAGES = ("torch", "lightning", "transformers", "peft", "sentence-transformers", "torchmetrics", "rouge-score",
            "evaluate", "omegaconf", "rank-bm25", "scikit-learn", "numpy", "tokenizers")


# What produces a row: the method and benchmark packages, the configs and the pinned dependencies. Results, docs,
# tests, scripts, the README and the Makefile are left out, so a grid can run across sittings while they change.
CODE_PATHS = ("benchmark", "baselines", "personaplug", "configs", "pyproject.toml", "requirements.txt",
              "requirements-models.txt")


def git_state(repo: Path = REPO) -> dict[str, Any]:
    """Commit, the source tree key, a dirty flag and a hash of the uncommitted diff, all over ``CODE_PATHS``.

    ``source_tree`` (:func:`source_tree_key`) hashes mode, blob id and path of every tracked file under
    ``CODE_PATHS`` as it is on disk: the code that produces a row. Resume keys on it, so a commit that only adds
    results (a grid committed task by task) or touches docs and tests keeps every finished row valid, while any
    change to code or configs starts new rows.
    """
    import hashlib

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    paths = ["--", *CODE_PATHS]
    commit = git("rev-parse", "HEAD") or "unknown"
    changed = git("diff", "HEAD", "--name-only", *paths).splitlines()
    out: dict[str, Any] = {"commit": commit, "dirty": bool(changed)}
    if changed:
        out["diff_sha256"] = hashlib.sha256(git("diff", "HEAD", *paths).encode()).hexdigest()
    out["source_tree"] = source_tree_key(git("ls-files", "-s", *paths), changed, repo, git)
    return out


def source_tree_key(listing: str, changed: list[str], repo: Path, git) -> str:
    """sha256 over (mode, blob id, path) of the tracked files as they are on disk: ``git ls-files -s`` with the
    blob ids of changed files recomputed from the working tree (``git hash-object``), deleted files left out.
    So a tree run dirty and then committed as is keeps its key."""
    if not listing:
        return "unknown"
    import hashlib

    present = [p for p in changed if (repo / p).is_file()]
    blobs = dict(zip(present, git("hash-object", "--", *present).splitlines())) if present else {}
    entries = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        mode, blob, _stage = meta.split()
        if path in changed and path not in blobs:
            continue                                  # deleted in the working tree
        entries.append(f"{mode} {blobs.get(path, blob)}\t{path}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def code_key(git: dict[str, Any]) -> str:
    """The code identity a row is resumed on: its source tree key; rows written before that key existed fall
    back to their commit (they still read and render, but a new run never matches them)."""
    return str(git.get("source_tree") or f"commit:{git.get('commit')}")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    out["python"] = platform.python_version()
    return out


def host_info() -> dict[str, Any]:
    import torch
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resume_key(row: dict[str, Any]) -> tuple:
    return (row["task"], row["method"], row.get("variant", ""), row["config_hash"], row["data"]["digest"],
            code_key(row.get("git") or {}))


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of runs.jsonl; a torn last line (a kill during append on a filesystem without atomic appends) is
    skipped with a warning rather than poisoning the file for every later reader."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                print(f"[runs] {path}:{n}: unreadable row skipped (torn write?)", file=sys.stderr)


def finished_keys(path: Path) -> set[tuple]:
    return {resume_key(r) for r in read_rows(path) if r.get("status") == "finished"}


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """An O_APPEND descriptor of ``path`` under an exclusive ``flock`` (other appenders wait; readers do not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)                                   # closing the descriptor releases the lock


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line: one locked write (a row is never interleaved with another process's), then fsync."""
    data = (json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()
    with locked(path) as fd:
        view = memoryview(data)
        while view:                                    # a write may be short (signals, huge rows): finish it
            view = view[os.write(fd, view):]
        os.fsync(fd)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def write_diagnostics(run_dir: Path, files: dict[str, Any]) -> None:
    """A method's run-level evidence: ``name.jsonl`` -> list of records, ``name.json`` -> one object."""
    for name, content in files.items():
        if "/" in name or not name.endswith((".json", ".jsonl")) or name in RUN_FILES:
            raise ValueError(f"diagnostics file name {name!r}: expected a plain name ending in .json or .jsonl "
                             f"and none of the run's own files {sorted(RUN_FILES)}")
        if name.endswith(".jsonl"):
            write_jsonl(run_dir / name, list(content))
        else:
            write_json(run_dir / name, content)


def make_run_id(task: str, display: str, config_hash: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    slug = "".join(c if c.isalnum() else "-" for c in display).strip("-")
    return f"{stamp}-{task}-{slug}-{config_hash[:8]}"
