"""The report layer's row reader: ``runs.jsonl`` rows (checked for the keys every reader relies on) and a run's
per-example score records. The leaderboard and the paired comparison read runs through it; neither recomputes
a score from model outputs.

Lines are parsed by :func:`benchmark.runs.provenance.read_rows` (the one reader of the file format, which skips a
torn last line with a message); this module adds what a report needs on top: validation, lookup by run id,
and the samples of one run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from benchmark.runs.provenance import read_rows

REQUIRED_KEYS = ("run_id", "status", "task", "method")  # every row, incl. the runner's failed/cancelled records
FINISHED_KEYS = ("metrics", "data")  # finished rows also carry these


# ---------------------------------------------------------------------------------------------- reading
def load_rows(results: str | Path) -> list[dict[str, Any]]:
    """Every row of ``<results>/runs.jsonl`` in file order (any status), via :func:`benchmark.runs.provenance.read_rows`
    (which skips a torn line with a message); a row without the keys every reader needs is an error."""
    path = Path(results) / "runs.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no runs file (has a run finished yet? `make bench` writes it)")
    rows = list(read_rows(path))
    for i, row in enumerate(rows, 1):
        need = REQUIRED_KEYS + (FINISHED_KEYS if row.get("status") == "finished" else ())
        missing = [k for k in need if k not in row]
        if missing:
            raise ValueError(f"{path}: row {i} (run {row.get('run_id', '?')!r}) lacks {', '.join(missing)}")
    return rows


def find_row(rows: Sequence[dict[str, Any]], run_id: str, results: str | Path) -> dict[str, Any]:
    """The last row recorded for ``run_id`` (a unique prefix of at least 6 characters is accepted)."""
    exact = [r for r in rows if r["run_id"] == run_id]
    if exact:
        return exact[-1]
    by_prefix = {r["run_id"]: r for r in rows if len(run_id) >= 6 and r["run_id"].startswith(run_id)}
    if len(by_prefix) == 1:
        return next(iter(by_prefix.values()))
    if len(by_prefix) > 1:
        raise KeyError(f"{results}/runs.jsonl: run id prefix {run_id!r} is ambiguous: {sorted(by_prefix)}")
    raise KeyError(f"{results}/runs.jsonl: no run {run_id!r} (it has {len(rows)} rows)")


def samples_path(results: str | Path, row: dict[str, Any]) -> Path:
    rel = Path(row.get("samples") or f"runs/{row['run_id']}/samples.jsonl")
    return rel if rel.is_absolute() else Path(results) / rel


def read_samples(results: str | Path, row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A run's per-example score records keyed by example id."""
    path = samples_path(results, row)
    if not path.exists():
        raise FileNotFoundError(f"{path}: samples of run {row['run_id']} not found")
    out: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, scores = str(rec["id"]), rec["scores"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{i}: not a sample record with 'id' and 'scores' ({e})") from None
            if key in out:
                raise ValueError(f"{path}:{i}: duplicate example id {key!r} in run {row['run_id']}")
            out[key] = scores
    return out
