"""Paired comparison of two runs on their per-example scores (paired bootstrap, Koehn 2004; Berg-Kirkpatrick et
al. 2012), used by the ``compare`` CLI and by the leaderboard's significance markers.

Two runs are comparable only when they scored the *same* examples of the *same* task on the *same* data (task
name, data digest, eval split and the set of example ids all equal); anything else is refused with a message
that names both runs and what differs. Samples are aligned by sorted example id, so the result does not depend
on file order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmark.data.tasks import load_task
from benchmark.report.rows import read_samples
from benchmark.scoring.metrics import aggregate, paired_test

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


# ---------------------------------------------------------------------------------------------- pairing
def check_comparable(row_a: dict[str, Any], row_b: dict[str, Any], ids_a: set[str], ids_b: set[str]) -> None:
    """Raise :class:`NotComparable` naming both runs and the first thing that differs."""
    a, b = row_a["run_id"], row_b["run_id"]
    da, db = row_a.get("data", {}), row_b.get("data", {})
    for what, va, vb in (("task", row_a["task"], row_b["task"]),
                         ("data digest", da.get("digest"), db.get("digest")),
                         ("eval split", da.get("eval_split"), db.get("eval_split"))):
        if va != vb:
            raise NotComparable(f"runs {a} and {b} are not comparable: {what} {va!r} vs {vb!r}")
    if ids_a != ids_b:
        diff = [f"{len(only)} ids only in {run} (e.g. {only[:3]})" for run, only in
                ((a, sorted(ids_a - ids_b)), (b, sorted(ids_b - ids_a))) if only]
        raise NotComparable(f"runs {a} and {b} scored different examples of {row_a['task']} "
                            f"({len(ids_a)} vs {len(ids_b)} ids; {'; '.join(diff)}); a paired test needs the same ids")


def paired(spec: Any, samples_a: dict[str, dict], samples_b: dict[str, dict], metric: str,
           n_boot: int = DEFAULT_BOOT, seed: int = 0) -> MetricComparison:
    """Paired test of one metric on two id-keyed sample sets with equal id sets (aligned by sorted id)."""
    ids = sorted(samples_a)
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
    if row_a["task"] != row_b["task"]:  # before reading samples: the cheapest and commonest mistake
        check_comparable(row_a, row_b, set(), set())
    spec = load_task(row_a["task"])
    sa, sb = read_samples(results, row_a), read_samples(results, row_b)
    check_comparable(row_a, row_b, set(sa), set(sb))
    names = list(metrics) if metrics else [m.name for m in spec.metrics]
    unknown = [m for m in names if m not in {x.name for x in spec.metrics}]
    if unknown:
        raise NotComparable(f"task {spec.name} has no metric {unknown[0]!r}; it has {[m.name for m in spec.metrics]}")
    return [paired(spec, sa, sb, m, n_boot, seed) for m in names]


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
        sa, sb = self.samples(a), self.samples(b)
        for s in (sa, sb):
            if isinstance(s, Exception):
                return f"no per-example scores ({s})"
        try:
            check_comparable(a, b, set(sa), set(sb))
            return paired(load_task(a["task"]), sa, sb, metric, self.n_boot, self.seed).significant
        except (NotComparable, KeyError, ValueError) as e:
            return str(e.args[0] if isinstance(e, KeyError) and e.args else e)
