"""LaMP metrics with the official scorer's exact semantics, plus bootstrap CIs and a paired test.

What the official scorer does (LaMP ``eval/evaluation.py``, checked by running it):

* classification (LaMP-1, LaMP-2, LaMP-2N): ``str(x).strip()`` on prediction and gold, then the index of
  the string in the label list, or -1 if it is not an exact (case-sensitive) label. ``accuracy`` is the
  fraction of equal indices. ``f1`` is scikit-learn ``f1_score(labels=range(len(labels)), average="macro")``
  with the default ``zero_division``: a label with neither a gold nor a predicted example counts as F1 = 0 and
  still enters the average (this lowers macro-F1 on small sets; we reproduce it, we do not fix it). The -1
  class is not in the label list, so an unparsable prediction only costs recall of the true class.
* rating (LaMP-3): ``float(pred)``; if that fails, the prediction becomes whichever of 1.0 and 5.0 is farther
  from the gold (``1.0 if |1 - gold| > |5 - gold| else 5.0``; a tie at gold 3 gives 5.0). No rounding, no
  clipping: "3.5" and "10" are taken as they are. ``MAE`` = mean |err|, ``RMSE`` = sqrt(mean err^2).
* generation (LaMP-4/5/6/7): rouge_score ``RougeScorer(["rouge1", "rougeL"], use_stemmer=False)`` F-measure of
  the stripped prediction against the stripped gold (default tokenizer: lower-case, keeps a-z and 0-9).
  ``rouge-1`` / ``rouge-L`` here are the **exact mean** over examples. The official scorer goes through HF
  ``evaluate``'s rouge, which reports the *median of 1,000 unseeded bootstrap resamples* of that mean
  (``BootstrapAggregator().aggregate()[k].mid``): a noisy estimate of the same quantity that differs from
  the exact mean by up to ~5e-3 on small sets. Reference 2.4 asks for the exact mean.

Two deliberate departures, both for inputs on which the official scorer gives no usable number:
a gold that is not a label (classification) or not a float (rating) raises ``ValueError`` naming the example
(the official code would silently count gold -1 == pred -1 as correct); a non-finite rating prediction
("nan", "inf", which ``float()`` accepts but scikit-learn rejects with a crash) is treated as unparsable.

Bootstrap CIs and the paired test resample examples and recompute each metric from per-example records
(``aggregate``), so corpus-level metrics (macro-F1, RMSE) are recomputed per resample rather than averaged.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from rouge_score.rouge_scorer import RougeScorer
from sklearn.metrics import f1_score

from benchmark.data.tasks import TaskSpec

# Our metric names (the official output keys) -> rouge_score rouge types.
ROUGE_TYPES = {"rouge-1": "rouge1", "rouge-L": "rougeL"}
METRICS_BY_KIND = {
    "classification": ("accuracy", "f1"),
    "rating": ("MAE", "RMSE"),
    "generation": tuple(ROUGE_TYPES),
}


@dataclass
class Scores:
    """Per-example records (JSON-ready dicts) and the official aggregates over them."""

    per_example: list[dict[str, Any]]
    aggregates: dict[str, float]
    n: int
    n_unparsable: int


@dataclass
class PairedResult:
    """``delta`` = metric(a) - metric(b) on the full set; ``ci`` its percentile-bootstrap interval."""

    delta: float
    p_value: float
    ci: tuple[float, float] = field(default=(math.nan, math.nan))


@lru_cache(maxsize=1)
def rouge_scorer() -> RougeScorer:
    """The official ROUGE configuration (no stemmer, default tokenizer), built once per process."""
    return RougeScorer(list(ROUGE_TYPES.values()), use_stemmer=False)


def metric_names(spec: TaskSpec) -> list[str]:
    """The spec's metric names, checked against what this module can compute for its kind."""
    known = METRICS_BY_KIND[spec.kind]
    names = [m.name for m in spec.metrics]
    for name in names:
        if name not in known:
            raise ValueError(f"task {spec.name}: metric {name!r} is not defined for a {spec.kind} task "
                             f"(known: {', '.join(known)})")
    return names


# ---------------------------------------------------------------------------------------------- per example
def _label_index(labels: Sequence[str], text: str) -> int:
    s = str(text).strip()
    return labels.index(s) if s in labels else -1


def _parse_rating(text: str) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _example_name(i: int, ids: Sequence[str] | None) -> str:
    return f"example {i} (id {ids[i]!r})" if ids is not None else f"example {i}"


def score_example(spec: TaskSpec, pred: str, gold: str, where: str = "example") -> dict[str, Any]:
    """One per-example record (see module docstring for the rules)."""
    if spec.kind == "classification":
        gi = _label_index(spec.labels, gold)
        if gi < 0:
            raise ValueError(f"task {spec.name}, {where}: gold {gold!r} is not one of the task labels")
        pi = _label_index(spec.labels, pred)
        return {"pred_index": pi, "gold_index": gi, "correct": int(pi == gi)}
    if spec.kind == "rating":
        g = _parse_rating(gold)
        if g is None:
            raise ValueError(f"task {spec.name}, {where}: gold {gold!r} is not a number")
        p = _parse_rating(pred)
        unparsable = p is None
        if p is None:
            p = 1.0 if abs(1.0 - g) > abs(5.0 - g) else 5.0
        err = p - g
        return {"pred": p, "gold": g, "unparsable": unparsable, "abs_err": abs(err), "sq_err": err * err}
    scores = rouge_scorer().score(str(gold).strip(), str(pred).strip())  # (target, prediction)
    return {name: float(scores[rtype].fmeasure) for name, rtype in ROUGE_TYPES.items()}


def is_unparsable(spec: TaskSpec, record: dict[str, Any], pred: str | None = None) -> bool:
    if spec.kind == "classification":
        return record["pred_index"] < 0
    if spec.kind == "rating":
        return bool(record["unparsable"])
    return pred is not None and not str(pred).strip()


def score(spec: TaskSpec, preds: Sequence[str], golds: Sequence[str],
          ids: Sequence[str] | None = None) -> Scores:
    """Score aligned predictions against golds with the official rules. ``ids`` only improves error messages."""
    if len(preds) != len(golds):
        raise ValueError(f"task {spec.name}: {len(preds)} predictions for {len(golds)} golds")
    if not golds:
        raise ValueError(f"task {spec.name}: nothing to score (0 examples)")
    per = [score_example(spec, p, g, _example_name(i, ids)) for i, (p, g) in enumerate(zip(preds, golds))]
    n_bad = sum(is_unparsable(spec, r, p) for r, p in zip(per, preds))
    return Scores(per_example=per, aggregates=aggregate(spec, per), n=len(per), n_unparsable=n_bad)


# ---------------------------------------------------------------------------------------------- aggregation
def _columns(spec: TaskSpec, per_example: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-example records as numpy columns, each [N]."""
    if not per_example:
        raise ValueError(f"task {spec.name}: no per-example records to aggregate")
    if spec.kind == "classification":
        return {"pred": np.array([r["pred_index"] for r in per_example], dtype=np.int64),
                "gold": np.array([r["gold_index"] for r in per_example], dtype=np.int64),
                "correct": np.array([r["correct"] for r in per_example], dtype=np.float64)}
    if spec.kind == "rating":
        return {k: np.array([r[k] for r in per_example], dtype=np.float64) for k in ("abs_err", "sq_err")}
    return {name: np.array([r[name] for r in per_example], dtype=np.float64) for name in metric_names(spec)}


def _macro_f1_batched(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> np.ndarray:
    """sklearn's macro-F1 (labels=range(n_labels), zero_division -> 0) for each row. pred, gold: [B, N]."""
    b = pred.shape[0]
    width = n_labels + 1  # slot 0 collects -1 (not a label) and non-hits; label l sits at slot l + 1
    rows = np.arange(b)[:, None] * width  # [B, 1]

    def counts(slots: np.ndarray) -> np.ndarray:  # slots [B, N] -> per-label counts [B, L]
        return np.bincount((rows + slots).ravel(), minlength=b * width).reshape(b, width)[:, 1:]

    tp = counts(np.where(pred == gold, gold + 1, 0))
    denom = counts(pred + 1) + counts(gold + 1)  # 2 tp + fp + fn = |pred == l| + |gold == l|
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(tp.shape, dtype=np.float64), where=denom > 0)
    return f1.mean(axis=1)  # [B]


def _batched(spec: TaskSpec, name: str, cols: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Metric ``name`` on each resample; idx [B, N] example indices -> values [B]."""
    if name == "accuracy":
        return cols["correct"][idx].mean(axis=1)
    if name == "f1":
        return _macro_f1_batched(cols["pred"][idx], cols["gold"][idx], len(spec.labels))
    if name == "MAE":
        return cols["abs_err"][idx].mean(axis=1)
    if name == "RMSE":
        return np.sqrt(cols["sq_err"][idx].mean(axis=1))
    return cols[name][idx].mean(axis=1)


def aggregate(spec: TaskSpec, per_example: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The official aggregates ({metric name: value}) recomputed from per-example records."""
    cols = _columns(spec, per_example)
    identity = np.arange(len(per_example))[None, :]  # [1, N]
    out: dict[str, float] = {}
    for name in metric_names(spec):
        if name == "f1":  # the official path, verbatim
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # UndefinedMetricWarning for labels absent from gold and pred
                out[name] = float(f1_score(cols["gold"], cols["pred"], labels=list(range(len(spec.labels))),
                                           average="macro"))
        else:
            out[name] = float(_batched(spec, name, cols, identity)[0])
    return out


def _resample(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # [B, N]


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_ci(spec: TaskSpec, per_example: Sequence[dict[str, Any]], n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap (1 - alpha) interval of every metric, resampling examples with replacement.

    Each resample recomputes the metric from its records (macro-F1 from the resampled confusion counts, RMSE
    as sqrt of the resampled mean squared error), so the interval is of the corpus-level metric itself.
    """
    cols = _columns(spec, per_example)
    idx = _resample(len(per_example), n_boot, seed)
    return {name: _percentiles(_batched(spec, name, cols, idx), alpha) for name in metric_names(spec)}


def paired_test(spec: TaskSpec, per_a: Sequence[dict[str, Any]], per_b: Sequence[dict[str, Any]], metric: str,
                n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> PairedResult:
    """Paired bootstrap test of metric(a) - metric(b) on the same examples (aligned by position).

    Method (Koehn 2004; Berg-Kirkpatrick et al. 2012, two-sided form): draw ``n_boot`` resamples of example
    indices, shared by both systems; on each compute delta* = metric(a*) - metric(b*). The bootstrap
    distribution of delta* - delta approximates the null distribution of delta around 0, so
    p = (1 + #{|delta* - delta| >= |delta|}) / (n_boot + 1) (the +1 keeps p > 0 and gives p = 1 for identical
    systems). ``ci`` is the percentile (1 - alpha) interval of delta*. The sign of delta is raw: for MAE/RMSE
    a negative delta means a is better.
    """
    if metric not in metric_names(spec):
        raise ValueError(f"task {spec.name}: metric {metric!r} not among {metric_names(spec)}")
    if len(per_a) != len(per_b):
        raise ValueError(f"task {spec.name}: paired test needs aligned records, got {len(per_a)} vs {len(per_b)}")
    delta = aggregate(spec, per_a)[metric] - aggregate(spec, per_b)[metric]
    idx = _resample(len(per_a), n_boot, seed)
    boot = _batched(spec, metric, _columns(spec, per_a), idx) - _batched(spec, metric, _columns(spec, per_b), idx)
    extreme = np.abs(boot - delta) >= abs(delta) - 1e-12  # tolerance: float noise must not break p = 1 ties
    p = (1.0 + float(extreme.sum())) / (n_boot + 1.0)
    return PairedResult(delta=float(delta), p_value=p, ci=_percentiles(boot, alpha))
