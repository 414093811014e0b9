"""LLM-free reference baselines: the trivial answers a reviewer checks before believing an LLM personalises.

No LaMP paper reports them, yet on real data they are strong (issue 9). Three methods, registered like every
other method (same runs, rows and leaderboard; ``uses_backbone = False`` puts them in the ``reference`` group
and no model is loaded):

``global_majority``  the same answer for every user, from the training questions' golds (``fit``):
    classification  the most frequent training label; ties: the first in ``spec.labels`` order.
    rating          ``method.rating_stat``: ``mode`` (default; the most frequent training rating, ties: the
                    lower rating, i.e. label order) or ``mean_rounded`` (the training mean, rounded half up).
    generation      the input text after the task's query rule (``spec.retrieval_query``), cut to its first L
                    words, L = the median word count of the training golds rounded half up (whitespace words,
                    ``benchmark.data.tasks.word_count``), so the copy is as long as a typical answer.
``user_majority``  the answer read from the question's *own* profile (exactly the history LaMP gives that
    question, never a longer per-user history):
    classification  the user's most frequent past label (profile field ``spec.answer_field``); ties: the
                    label used most recently (profiles are oldest first, benchmark/data/example.py).
    rating          ``method.rating_stat``: ``mean_rounded`` (default; the mean past rating rounded half up,
                    2.5 -> 3) or ``mode`` (ties: most recent).
    generation      the "nearest past answer": the ``spec.answer_field`` of the profile item ranked first by
                    BM25 (``benchmark.retrieval.bm25``: rank_bm25 BM25Okapi semantics, LaMP's query rule and documents,
                    one corpus per profile); items with an empty answer are passed over.
    Tasks whose profile carries no answer (``answer_field: ''``, LaMP-1) are refused; use profile_overlap.
``profile_overlap``  (baselines/overlap.py) LaMP-1 only: the candidate reference sharing more words with
    the author's past papers.

A user whose profile is empty, or holds no usable answer (labels outside ``spec.labels``, unparsable ratings,
empty outputs), gets the global answer; ``cost()["n_fallback_global"]`` counts them and ``cost()["rules"]``
records every rule and fitted statistic, so a row says exactly what was predicted and why.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from statistics import median
from typing import Any, ClassVar, Hashable, Sequence

from benchmark.contract.config import MethodConfig, check_choice
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec, word_count

RATING_STATS = ("mode", "mean_rounded")


# ---------------------------------------------------------------------------------------------- counting rules
def most_frequent_first(values: Sequence[Hashable], order: Sequence[Hashable]) -> Hashable:
    """The most frequent of ``values``; ties: the earliest in ``order`` (``max`` keeps the first maximum)."""
    counts = Counter(values)
    return max(order, key=lambda v: counts[v])


def most_frequent_recent(values: Sequence[Hashable]) -> Hashable:
    """The most frequent of ``values`` (oldest first); ties: the value whose last use is the most recent."""
    counts = Counter(values)
    last = {v: i for i, v in enumerate(values)}
    return max(counts, key=lambda v: (counts[v], last[v]))


def round_half_up(x: Fraction) -> int:
    """2.5 -> 3, 3.5 -> 4 (not Python's banker's rounding); exact on Fractions."""
    return math.floor(x + Fraction(1, 2))


def parse_rating(text: Any) -> Fraction | None:
    """A rating string ('4', '4.0', ' 5 ') as an exact Fraction; None when it is not a finite number."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return Fraction(str(text).strip()) if math.isfinite(value) else None


def rating_label(spec: TaskSpec, value: Fraction | int) -> str:
    """The spec label numerically nearest to ``value`` (exact for 1..5; clips anything outside the scale)."""
    return min(spec.labels, key=lambda lab: abs(Fraction(lab) - value))


def rating_statistic(spec: TaskSpec, values: Sequence[Fraction], stat: str, tie: str) -> str:
    """``mode`` (ties: ``first`` = lowest rating, ``recent`` = most recent) or ``mean_rounded`` (half up)."""
    if stat == "mean_rounded":
        return rating_label(spec, round_half_up(sum(values, Fraction(0)) / len(values)))
    if tie == "first":
        return rating_label(spec, most_frequent_first(values, sorted(set(values))))
    return rating_label(spec, most_frequent_recent(values))


def typical_length(golds: Sequence[str]) -> int:
    """The median word count of the golds, rounded half up, at least 1 word."""
    return max(1, round_half_up(Fraction(median(word_count(g) for g in golds))))


def first_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


# ---------------------------------------------------------------------------------------------- global answer
class GlobalAnswer:
    """The global (user-independent) answer fitted on the training questions' golds."""

    def __init__(self, spec: TaskSpec, train: Sequence[Example], rating_stat: str):
        self.spec = spec
        golds = [(ex.id, ex.gold) for ex in train if ex.gold is not None]
        if not golds:
            raise ValueError(f"task {spec.name}: the global answer needs training questions with golds, got "
                             f"{len(train)} questions and none with a gold")
        self.n_train = len(golds)
        self.label: str | None = None
        self.length: int | None = None
        if spec.kind == "classification":
            bad = [qid for qid, g in golds if g.strip() not in spec.labels]
            if bad:
                raise ValueError(f"task {spec.name}: training golds outside the label set, ids {bad[:5]}")
            self.label = str(most_frequent_first([g.strip() for _, g in golds], spec.labels))
            self.rule = f"most frequent of {self.n_train} training golds (ties: first in label order)"
        elif spec.kind == "rating":
            values = [(qid, parse_rating(g)) for qid, g in golds]
            bad = [qid for qid, v in values if v is None]
            if bad:
                raise ValueError(f"task {spec.name}: training golds that are not ratings, ids {bad[:5]}")
            self.label = rating_statistic(spec, [v for _, v in values], rating_stat, tie="first")
            self.rule = (f"{rating_stat} of {self.n_train} training ratings"
                         + (" (ties: lower rating)" if rating_stat == "mode" else " (rounded half up)"))
        else:
            self.length = typical_length([g for _, g in golds])
            self.rule = (f"first {self.length} words of the input after the task's query rule; {self.length} = "
                         f"median word count of {self.n_train} training golds, rounded half up")

    def answer(self, ex: Example) -> str:
        if self.label is not None:
            return self.label
        assert self.length is not None
        return first_words(self.spec.retrieval_query(ex.input), self.length)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"global_rule": self.rule}
        if self.label is not None:
            out["global_answer"] = self.label
        else:
            out["global_length_words"] = self.length
        return out


# ---------------------------------------------------------------------------------------------- shared base
@dataclass
class ReferenceConfig(MethodConfig):
    rating_stat: str = "mode"           # LaMP-3 global rating: mode | mean_rounded

    def __post_init__(self) -> None:
        check_choice(self.rating_stat, RATING_STATS, "rating_stat")


class ReferenceMethod(Method):
    """Common plumbing: no backbone, the fitted global answer, the fallback counter, the cost row."""

    uses_backbone: ClassVar[bool] = False
    grid_order: ClassVar[int] = 10          # before the LLM methods in a grid (benchmark/runs/runner.py)
    Config: ClassVar[type] = ReferenceConfig

    @classmethod
    def unsupported_reason(cls, spec: TaskSpec) -> str | None:
        """Why this method cannot run on ``spec`` (None = it can). A runner may skip such (task, method) pairs."""
        return None

    def __init__(self, ctx):
        super().__init__(ctx)
        self.spec: TaskSpec = ctx.spec
        reason = self.unsupported_reason(self.spec)
        if reason:
            raise ValueError(f"method {self.name} does not apply to task {self.spec.name}: {reason}")
        self.global_: GlobalAnswer | None = None
        self.n_fallback_global = 0
        self.n_predicted = 0

    def global_rating_stat(self) -> str:
        return self.cfg.rating_stat

    def fit(self, train: Sequence[Example]) -> None:
        self.global_ = GlobalAnswer(self.spec, train, self.global_rating_stat())

    def global_answer(self, ex: Example) -> str:
        if self.global_ is None:
            raise RuntimeError(f"method {self.name} on {self.spec.name}: predict() before fit(train)")
        return self.global_.answer(ex)

    def answer(self, ex: Example) -> str | None:
        """The method's own answer, or None to fall back to the global answer."""
        return None

    def answers(self, examples: Sequence[Example]) -> list[str | None]:
        """Own answers for a batch (override to batch work across questions)."""
        return [self.answer(ex) for ex in examples]

    def predict(self, examples: Sequence[Example]) -> Prediction:
        final = []
        for ex, own in zip(examples, self.answers(examples)):
            if own is None:
                self.n_fallback_global += 1
                own = self.global_answer(ex)
            final.append(own)
        self.n_predicted += len(final)
        return Prediction(final)

    def rules(self) -> dict[str, Any]:
        """The rules and fitted statistics behind the predictions (text and values, for the row)."""
        return self.global_.describe() if self.global_ is not None else {}

    def counts(self) -> dict[str, int]:
        """Method-specific counters for the cost columns."""
        return {}

    def cost(self) -> dict[str, Any]:
        return {"trainable_params": 0, "stored_bytes_per_user": 0, "n_predicted": self.n_predicted,
                "n_fallback_global": self.n_fallback_global, **self.counts(), "rules": self.rules()}


# ---------------------------------------------------------------------------------------------- the methods
@register_method("global_majority")
class GlobalMajority(ReferenceMethod):
    """Everyone gets the global answer (it is never a fallback here, so n_fallback_global stays 0)."""

    def predict(self, examples: Sequence[Example]) -> Prediction:
        final = [self.global_answer(ex) for ex in examples]
        self.n_predicted += len(final)
        return Prediction(final)


@dataclass
class UserMajorityConfig(MethodConfig):
    rating_stat: str = "mean_rounded"   # the user's rating: mean_rounded | mode (ties: most recent)
    fallback_rating_stat: str = "mode"  # the global rating for empty profiles: mode | mean_rounded

    def __post_init__(self) -> None:
        check_choice(self.rating_stat, RATING_STATS, "rating_stat")
        check_choice(self.fallback_rating_stat, RATING_STATS, "fallback_rating_stat")


@register_method("user_majority")
class UserMajority(ReferenceMethod):
    Config: ClassVar[type] = UserMajorityConfig

    @classmethod
    def unsupported_reason(cls, spec: TaskSpec) -> str | None:
        if not spec.answer_field:
            return ("its profile items carry no answer (answer_field is empty in configs/tasks/"
                    f"{spec.name}.yaml); for LaMP-1 use profile_overlap")
        if spec.answer_field not in spec.profile_fields:
            return (f"configs/tasks/{spec.name}.yaml: answer_field {spec.answer_field!r} is not one of the "
                    f"profile_fields {spec.profile_fields}")
        return None

    def __init__(self, ctx):
        super().__init__(ctx)
        self.user_stat = self.cfg.rating_stat
        self.n_ignored_items = 0

    def global_rating_stat(self) -> str:
        return self.cfg.fallback_rating_stat

    def answer(self, ex: Example) -> str | None:
        field = self.spec.answer_field
        if self.spec.kind == "classification":
            values = [str(item.get(field, "")).strip() for item in ex.profile]
            usable = [v for v in values if v in self.spec.labels]
            self.n_ignored_items += len(values) - len(usable)
            return str(most_frequent_recent(usable)) if usable else None
        ratings = [parse_rating(item.get(field, "")) for item in ex.profile]
        usable_r = [r for r in ratings if r is not None]
        self.n_ignored_items += len(ratings) - len(usable_r)
        return rating_statistic(self.spec, usable_r, self.user_stat, tie="recent") if usable_r else None

    def answers(self, examples: Sequence[Example]) -> list[str | None]:
        if self.spec.kind != "generation":
            return super().answers(examples)
        return self.nearest_past_answers(examples)

    def nearest_past_answers(self, examples: Sequence[Example]) -> list[str | None]:
        """Per question, the first non-empty answer in its profile's BM25 order (one batched BM25 call)."""
        from benchmark.retrieval.bm25 import bm25_rank_many

        answers = [[str(it.get(self.spec.answer_field, "")).strip() for it in ex.profile] for ex in examples]
        self.n_ignored_items += sum(a == "" for per in answers for a in per)
        todo = [i for i, per in enumerate(answers) if any(per)]
        orders = bm25_rank_many([self.spec.retrieval_query(examples[i].input) for i in todo],
                                [[self.spec.document(it) for it in examples[i].profile] for i in todo])
        out: list[str | None] = [None] * len(examples)
        for i, order in zip(todo, orders):
            out[i] = next(answers[i][j] for j in order if answers[i][j])
        return out

    def rules(self) -> dict[str, Any]:
        kind = self.spec.kind
        own = {"classification": "user's most frequent past label (ties: most recently used)",
               "rating": f"user's past ratings, {self.user_stat}"
                         + (" (rounded half up)" if self.user_stat == "mean_rounded" else " (ties: most recent)"),
               "generation": "answer of the profile item ranked first by BM25Okapi over the profile (LaMP query "
                             "rule and documents, benchmark/retrieval/bm25.py; ties as rank_bm25 orders them)"}
        return {"user_rule": f"{own[kind]} from profile field {self.spec.answer_field!r}",
                "fallback": "global answer when the profile holds no usable answer", **super().rules()}

    def counts(self) -> dict[str, int]:
        return {"n_ignored_profile_items": self.n_ignored_items}

