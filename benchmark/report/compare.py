"""Paired comparison of two benchmark runs on their per-example scores.

    python -m benchmark.report.compare RUN_A RUN_B [--results results] [--metric accuracy] [--n-boot 2000] [--seed 0]

Two runs are comparable only when they scored the *same* examples of the *same* task on the *same* data
(task name, data digest, eval split and the set of example ids all equal), or when one of them is method-capped
(``data.method_limit``: the first N questions of the same seeded order) and its ids lie inside the other's: the
pair is then tested on the capped run's ids. Anything else is refused with a message that names both runs and
what differs. Scores are never recomputed from model outputs: the per-example
records the runner wrote (``results/runs/<run_id>/samples.jsonl``, field ``scores``) are aligned by example id
(sorted, so the result does not depend on file order) and passed to :func:`benchmark.scoring.metrics.paired_test`
(paired bootstrap, Koehn 2004; Berg-Kirkpatrick et al. 2012) and :func:`benchmark.scoring.metrics.aggregate`.

It also holds the readers the leaderboard reuses for its significance markers (``benchmark/report/leaderboard.py``):
rows of ``runs.jsonl`` (through :func:`benchmark.runs.provenance.read_rows`, checked for the keys readers rely on) and a
run's per-example scores, cached per run by :class:`PairedTester`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmark.report.plots import arrow

REQUIRED_KEYS = ("run_id", "status", "task", "method")  # every row, incl. the runner's failed/cancelled records
FINISHED_KEYS = ("metrics", "data")  # finished rows also carry these
DEFAULT_BOOT = 2000  # benchmark.scoring.metrics.paired_test's default: smallest attainable p is 1/2001
ALPHA = 0.05


class NotComparable(ValueError):
    """Two runs cannot be paired (different task, data, split or example ids)."""


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    higher_is_better: bool
    value_a: float
    value_b: float
    delta: float  # value_a - value_b (raw sign; for MAE a negative delta means A is better)
    p_value: float
    ci: tuple[float, float]  # percentile 95% interval of the bootstrap delta
    n: int  # paired examples

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def verdict(self) -> str:
        if not self.significant or self.delta == 0:
            return "n.s."
        return "A better" if (self.delta > 0) == self.higher_is_better else "B better"


# ---------------------------------------------------------------------------------------------- reading
def read_rows(results: str | Path) -> list[dict[str, Any]]:
    """Every row of ``<results>/runs.jsonl`` in file order (any status), via :func:`benchmark.runs.provenance.read_rows`
    (which skips a torn line with a message); a row without the keys every reader needs is an error."""
    from benchmark.runs.provenance import read_rows as read_run_rows

    path = Path(results) / "runs.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no runs file (has a run finished yet? `make bench` writes it)")
    rows = list(read_run_rows(path))
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


# ---------------------------------------------------------------------------------------------- pairing
def method_cap(row: dict[str, Any]) -> int | None:
    """The row's nested per-method question cap (``data.method_limit``), None when uncapped."""
    cap = (row.get("data") or {}).get("method_limit")
    return None if cap is None else int(cap)


def check_comparable(row_a: dict[str, Any], row_b: dict[str, Any], ids_a: set[str], ids_b: set[str]) -> set[str]:
    """The ids both runs are paired on; raise :class:`NotComparable` naming both runs and what differs.

    The id sets must be equal, or one run is method-capped (``data.method_limit``: a nested prefix of the same
    seeded order) and its ids lie inside the other's: then the pair is tested on the capped run's ids."""
    a, b = row_a["run_id"], row_b["run_id"]
    da, db = row_a.get("data", {}), row_b.get("data", {})
    for what, va, vb in (("task", row_a["task"], row_b["task"]),
                         ("data digest", da.get("digest"), db.get("digest")),
                         ("eval split", da.get("eval_split"), db.get("eval_split"))):
        if va != vb:
            raise NotComparable(f"runs {a} and {b} are not comparable: {what} {va!r} vs {vb!r}")
    if ids_a == ids_b:
        return set(ids_a)
    nested = (method_cap(row_a) is not None and ids_a < ids_b) or (method_cap(row_b) is not None and ids_b < ids_a)
    if nested:
        return ids_a & ids_b
    diff = [f"{len(only)} ids only in {run} (e.g. {only[:3]})" for run, only in
            ((a, sorted(ids_a - ids_b)), (b, sorted(ids_b - ids_a))) if only]
    raise NotComparable(f"runs {a} and {b} scored different examples of {row_a['task']} "
                        f"({len(ids_a)} vs {len(ids_b)} ids; {'; '.join(diff)}); a paired test needs the same ids "
                        f"or a method-capped run whose ids are a subset of the other's")


def paired(spec: Any, samples_a: dict[str, dict], samples_b: dict[str, dict], metric: str,
           n_boot: int = DEFAULT_BOOT, seed: int = 0, ids: set[str] | None = None) -> MetricComparison:
    """Paired test of one metric on two id-keyed sample sets over ``ids`` (default: all of ``samples_a``'s,
    which must then be ``samples_b``'s too), aligned by sorted id."""
    from benchmark.scoring.metrics import aggregate, paired_test

    ids = sorted(samples_a if ids is None else ids)
    per_a, per_b = [samples_a[i] for i in ids], [samples_b[i] for i in ids]
    hib = {m.name: m.higher_is_better for m in spec.metrics}[metric]
    result = paired_test(spec, per_a, per_b, metric, n_boot=n_boot, seed=seed)
    return MetricComparison(metric=metric, higher_is_better=hib, value_a=aggregate(spec, per_a)[metric],
                            value_b=aggregate(spec, per_b)[metric], delta=result.delta,
                            p_value=result.p_value, ci=tuple(result.ci), n=len(ids))


def compare_runs(results: str | Path, row_a: dict[str, Any], row_b: dict[str, Any],
                 metrics: Sequence[str] | None = None, n_boot: int = DEFAULT_BOOT,
                 seed: int = 0) -> list[MetricComparison]:
    """Every requested metric (default: all of the task's) compared between two runs."""
    from benchmark.data.tasks import load_task

    if row_a["task"] != row_b["task"]:  # before reading samples: the cheapest and commonest mistake
        check_comparable(row_a, row_b, set(), set())
    spec = load_task(row_a["task"])
    sa, sb = read_samples(results, row_a), read_samples(results, row_b)
    shared = check_comparable(row_a, row_b, set(sa), set(sb))
    names = list(metrics) if metrics else [m.name for m in spec.metrics]
    unknown = [m for m in names if m not in {x.name for x in spec.metrics}]
    if unknown:
        raise NotComparable(f"task {spec.name} has no metric {unknown[0]!r}; it has {[m.name for m in spec.metrics]}")
    return [paired(spec, sa, sb, m, n_boot, seed, shared) for m in names]


class PairedTester:
    """Paired tests between rows of one results dir, each run's samples read once (leaderboard markers)."""

    def __init__(self, results: str | Path, n_boot: int = DEFAULT_BOOT, seed: int = 0):
        self.results, self.n_boot, self.seed = Path(results), n_boot, seed
        self._samples: dict[str, dict[str, dict] | Exception] = {}

    def samples(self, row: dict[str, Any]) -> dict[str, dict] | Exception:
        if row["run_id"] not in self._samples:
            try:
                self._samples[row["run_id"]] = read_samples(self.results, row)
            except (FileNotFoundError, ValueError) as e:
                self._samples[row["run_id"]] = e
        return self._samples[row["run_id"]]

    def significant(self, a: dict[str, Any], b: dict[str, Any], metric: str) -> bool | str:
        """Whether ``metric`` differs at p < ALPHA; a string says why the test could not be run."""
        from benchmark.data.tasks import load_task

        sa, sb = self.samples(a), self.samples(b)
        for s in (sa, sb):
            if isinstance(s, Exception):
                return f"no per-example scores ({s})"
        try:
            shared = check_comparable(a, b, set(sa), set(sb))
            return paired(load_task(a["task"]), sa, sb, metric, self.n_boot, self.seed, shared).significant
        except (NotComparable, KeyError, ValueError) as e:
            return str(e.args[0] if isinstance(e, KeyError) and e.args else e)


# ---------------------------------------------------------------------------------------------- CLI
def render(row_a: dict[str, Any], row_b: dict[str, Any], comps: Sequence[MetricComparison], n_boot: int,
           seed: int) -> str:
    data, n = row_a.get("data", {}), comps[0].n if comps else 0
    lines = [f"{row_a['task']} on {data.get('source', '?')} (digest {str(data.get('digest', '?'))[:12]}, "
             f"{data.get('eval_split', '?')}): {n} paired examples; paired bootstrap, {n_boot} resamples, "
             f"seed {seed}, alpha {ALPHA}",
             f"A = {row_a['run_id']}  {row_a.get('display') or row_a['method']}",
             f"B = {row_b['run_id']}  {row_b.get('display') or row_b['method']}", ""]
    head = f"{'metric':<12}{'A':>9}{'B':>9}{'A-B':>10}   {'95% CI of A-B':<22}{'p':>8}  verdict"
    lines += [head, "-" * len(head)]
    for c in comps:
        ci = f"[{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"
        lines.append(f"{c.metric + ' ' + arrow(c.higher_is_better):<12}{c.value_a:>9.4f}{c.value_b:>9.4f}"
                     f"{c.delta:>+10.4f}   {ci:<22}{c.p_value:>8.4f}  {c.verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.report.compare", description=__doc__.split("\n")[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--results", default="results", help="results dir holding runs.jsonl and runs/")
    ap.add_argument("--metric", action="append", help="metric to test (repeatable); default: all of the task's")
    ap.add_argument("--n-boot", type=int, default=DEFAULT_BOOT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        rows = read_rows(args.results)
        row_a, row_b = find_row(rows, args.run_a, args.results), find_row(rows, args.run_b, args.results)
        comps = compare_runs(args.results, row_a, row_b, args.metric, args.n_boot, args.seed)
    except (NotComparable, KeyError, FileNotFoundError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise SystemExit(f"compare: error: {msg}") from None
    for row in (row_a, row_b):
        if row["status"] != "finished":
            print(f"note: run {row['run_id']} has status {row['status']!r}; it is not on the leaderboard",
                  file=sys.stderr)
    print(render(row_a, row_b, comps, args.n_boot, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
