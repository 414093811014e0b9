"""Summary-augmented prompting (Richardson et al. 2023, arXiv 2310.20081): an LLM-written, task-aware user
summary in front of LaMP's retrieval prompt with a small k.

Offline, an instruction-tuned LLM (the summariser) reads up to ``history_items`` (K) of the user's history and
writes a task-aware summary with the task's prompt (``summary_prompt`` in the ``tasks:`` block of
configs/methods/summary.yaml, the wording OPPU's PAG baseline uses). At inference the summary is placed before
LaMP's RAG prompt with ``k`` retrieved items
(``summary``: k = 1 by default, a quarter of RAG's k = 4, the paper's "75 % less retrieved data";
``summary_only``: k = 0, summary + the plain input). No official code exists; the choices below are ours and
every one is recorded (config, ``summaries.jsonl``, cost columns).

Summariser prompt (``summariser_prompt``): the K items (``selection``: ``recency`` = the latest K, or
``random`` = K drawn by an RNG seeded with (seed, user key) alone; OPPU samples 10, unseeded), oldest first,
each rendered with the task's ``summary_item`` and joined by " | " (OPPU's separator; its released code formats the
Python list repr by mistake). The whole prompt fits ``summary_max_input_tokens`` of the summariser's
tokenizer: the instruction is never cut; items share the rest evenly (``fair_shares``), and an item that must
shrink loses tokens from its longest field, so a short label or headline survives. Greedy decoding,
``summary_max_new_tokens``; the summariser reads its whole prompt even when ``backbone.max_input_tokens`` is
smaller (``generate(max_input_tokens=...)``).

Unit of summarisation: a (user, selected history) pair, built from each question's *own* profile, so a
summary never sees items after the question (in LaMP's time-based split a later profile holds an earlier
question's gold). In LaMP each user has one question per split, so this is one summary per user.

Final prompt (``compose_prompt``), measured with the backbone's tokenizer, never over
``backbone.max_input_tokens`` (B): ``"User summary: <summary>\\n<LaMP RAG prompt>"``. The summary part takes at
most ``summary_share`` x B tokens and LaMP's builder (benchmark/models/prompts.py) gets the rest. LaMP's builder keeps
an input longer than 0.6 x its budget whole, so a long input can overrun B: then the summary yields, shortened
or dropped (the example then gets exactly the plain RAG prompt), and a RAG prompt over B on its own is cut at B
as the LanguageModel cuts any prompt. Both events are counted in cost().

Summaries are cached in ``ctx.store`` (namespace ``summaries``) under a content key of (summariser identity,
prompt text, item ids, decoding), and returned by ``diagnostics()`` as ``summaries.jsonl`` for reviewers.
"""
from __future__ import annotations

import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Optional

from omegaconf import OmegaConf

from benchmark.contract.config import MethodConfig, check_choice, check_range
from benchmark.contract.method import Method
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.models.prompts import TokenCounter, build_rag_prompt
from benchmark.retrieval.rankers import random_rank, recency_rank, retrieve_top_k
from benchmark.cache.store import content_key, text_key
from benchmark.data.tasks import render

NAMESPACE = "summaries"
SELECTIONS = ("recency", "random")
SEPARATOR = " | "


@dataclass
class SummaryConfig(MethodConfig):
    k: int = 1                           # retrieved items after the summary (k_small); 0 = summary + input
    retriever: str = "bm25"              # a ranker of benchmark.retrieval.rankers
    summarizer: Optional[str] = None     # None = the run's backbone; else a backbone id / alias / path
    history_items: int = 10              # K items the summariser reads
    selection: str = "recency"           # recency | random (seeded by seed + user key)
    summary_max_input_tokens: int = 512  # summariser prompt budget (its own tokenizer, raw text)
    summary_max_new_tokens: int = 96     # greedy
    summary_share: float = 0.4           # max fraction of backbone.max_input_tokens the summary part may take
    summary_header: str = "User summary: "
    summary_prompt: str = "???"          # per task (tasks: block): the summariser's instruction, with {history}
    summary_item: str = "???"            # per task: one history item, from its profile fields

    def __post_init__(self) -> None:
        check_choice(self.selection, SELECTIONS, "selection")
        check_range(self.summary_share, 0.0, 1.0, "summary_share")
        if self.k < 0:
            raise ValueError(f"method.k must be >= 0, got {self.k}")
        if "{history}" not in self.summary_prompt:
            raise ValueError(f"method.summary_prompt must contain {{history}}, got {self.summary_prompt[:60]!r}")


@dataclass
class SummaryOnlyConfig(SummaryConfig):
    k: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k != 0:
            raise ValueError(f"summary_only takes k = 0, got method.k={self.k}; use the 'summary' method for k > 0")


@dataclass
class Job:
    """One summary to write: a user and the history items it reads."""
    user: str
    item_ids: list[str]
    prompt: str
    key: str
    summary: str = ""
    cached: bool = False
    example_ids: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- pure helpers
def fair_shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Even truncation: each item gets min(its length, an equal share of what is left); the share a short item
    does not use flows to the longer ones. ``fair_shares([10, 50, 50], 60) == [10, 25, 25]``."""
    shares, left = [0] * len(lengths), max(int(budget), 0)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for rank, i in enumerate(order):
        shares[i] = min(lengths[i], left // (len(order) - rank))
        left -= shares[i]
    return shares


def select_history(profile: Sequence[dict[str, Any]], k: int, rule: str, seed: int, user: str) -> list[dict]:
    """Up to ``k`` items, oldest first. ``recency``: the latest k (benchmark.retrieval.rankers.recency_rank: by ``date``
    when every item has one, else by profile order); ``random``: k items of a permutation that depends only on
    (seed, user) (benchmark.retrieval.rankers.random_rank), so it is reproducible and independent of any other draw."""
    if rule not in SELECTIONS:
        raise ValueError(f"baselines/summary.py: method.selection must be one of {SELECTIONS}, got {rule!r}")
    newest_first = recency_rank(profile)
    picked = set(newest_first[:k] if rule == "recency" else random_rank(len(profile), int(seed), user)[:k])
    return [profile[i] for i in reversed(newest_first) if i in picked]


def fit_item(template: str, item: dict[str, Any], n_tokens: int, count: Callable[[str], int],
             truncate: Callable[[str, int], str]) -> str:
    """``template`` rendered with ``item`` in at most ``n_tokens`` tokens, shortening the longest field first;
    "" when not even the template's fixed words plus one token of content fit (the caller drops the item)."""
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if n_tokens < count(render(template, {f: "" for f in names})) + 1:
        return ""
    fields = {k: str(v) for k, v in item.items()}
    text = render(template, fields)
    for _ in range(2 * len(names) + 2):
        over = count(text) - n_tokens
        if over <= 0:
            return text
        longest = max(names, key=lambda f: count(fields[f]))
        size = count(fields[longest])
        if size == 0:
            break
        fields[longest] = truncate(fields[longest], max(size - over, 0))
        text = render(template, fields)
    return truncate(text, n_tokens)


def summariser_prompt(template: str, item_template: str, items: Sequence[dict[str, Any]], budget: int,
                      count: Callable[[str], int], truncate: Callable[[str, int], str]) -> tuple[str, list[dict]]:
    """-> (``template`` with the items, each rendered by ``item_template``, within ``budget`` tokens; the items it
    kept). The instruction is never cut."""
    empty = render(template, {"history": ""})
    items = list(items)
    while items:
        full = [render(item_template, {k: str(v) for k, v in it.items()}) for it in items]
        room = budget - count(empty) - count(SEPARATOR) * (len(items) - 1)
        shares = fair_shares([count(t) for t in full], room)
        for _ in range(4):  # sub-word merges across the joins can add a token or two: shave the largest share
            texts = [fit_item(item_template, it, s, count, truncate) for it, s in zip(items, shares)]
            prompt = render(template, {"history": SEPARATOR.join(texts)})
            over = count(prompt) - budget
            if over <= 0 and all(texts):
                return prompt, items
            if not all(texts):
                break
            j = max(range(len(shares)), key=lambda i: shares[i])
            shares[j] -= over
        items = items[1:]  # not even one token per item: drop the oldest and retry
    if count(empty) > budget:
        raise ValueError(f"baselines/summary.py: the summary instruction alone has "
                         f"{count(empty)} tokens > summary_max_input_tokens={budget}")
    return empty, []


# ---------------------------------------------------------------------------------------------- the method
@register_method("summary")
class SummaryAugmented(Method):
    """Summary of the user's history + LaMP's RAG prompt with ``k`` items (Richardson et al. 2023)."""

    grid_order = 30                    # after retrieval, whose BM25 rankings it reuses
    Config = SummaryConfig
    caches = ("summaries", "bm25")
    shard_by = "user"                  # a rank writes the summaries of the users it owns
    cfg: SummaryConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        self.seconds: list[float] = []          # summarisation wall seconds per computed user (batch mean)
        self.cpu_seconds: list[float] = []      # the same in process CPU seconds (all threads): load-independent
        self.hits = self.misses = self.n_cut = self.n_dropped = 0
        self.records: dict[str, dict[str, Any]] = {}  # cache key -> summaries.jsonl row

    # ------------------------------------------------------------------ the summariser
    @cached_property
    def summarizer(self):
        """The run's backbone view, or another backbone loaded with the run's backbone settings and that id."""
        if self.cfg.summarizer in (None, ""):
            return self.ctx.lm
        from benchmark.models.loading import load_backbone
        node = OmegaConf.to_container(self.ctx.cfg.backbone, resolve=True)
        node["id"] = self.cfg.summarizer
        return load_backbone(node, {"num_beams": 1})

    @property
    def decoding(self) -> dict[str, Any]:
        return {"max_new_tokens": self.cfg.summary_max_new_tokens, "num_beams": 1, "do_sample": False}

    def jobs(self, examples: Sequence[Example]) -> tuple[list[Job], list[int]]:
        """-> (distinct summaries to write, for each example the index of its job)."""
        lm = self.summarizer
        jobs: dict[str, Job] = {}
        position: dict[str, int] = {}
        index: list[int] = []
        for ex in examples:
            items = select_history(ex.profile, self.cfg.history_items, self.cfg.selection, self.ctx.seed,
                                   ex.user_key)
            prompt, kept = summariser_prompt(self.cfg.summary_prompt, self.cfg.summary_item, items,
                                             self.cfg.summary_max_input_tokens, lm.count_tokens, lm.truncate)
            ids = [str(it.get("id", "")) for it in kept]
            key = content_key("summary/v1", dict(lm.ident), prompt, ids, self.decoding)
            job = jobs.setdefault(key, Job(ex.user_key, ids, prompt, key))
            job.example_ids.append(ex.id)
            index.append(position.setdefault(key, len(position)))
        return list(jobs.values()), index

    def summaries(self, examples: Sequence[Example]) -> list[str]:
        """One summary per example (input order): cached ones loaded, the rest generated in batches."""
        jobs, index = self.jobs(examples)
        store, lm = self.ctx.store, self.summarizer
        todo = []
        for job in jobs:
            if store.has(NAMESPACE, job.key):
                job.summary, job.cached = store.get_or_compute(NAMESPACE, job.key, _unreachable), True
                self.hits += 1
            else:
                todo.append(job)
        batch = max(lm.generate_batch_size, 1)
        pending: list[Job] = []
        for i, job in enumerate(self.ctx.progress(todo, total=len(todo), desc=f"summarise {self.ctx.spec.name}")):
            pending.append(job)
            if len(pending) == batch or i == len(todo) - 1:
                self._write(pending)
                pending = []
        for job in jobs:
            self.records[job.key] = {"user": job.user, "summary": job.summary, "item_ids": job.item_ids,
                                     "example_ids": job.example_ids, "selection": self.cfg.selection,
                                     "cached": job.cached, "prompt_sha256": text_key(job.prompt),
                                     "summarizer": lm.ident.get("id")}
        return [jobs[j].summary for j in index]

    def _write(self, jobs: list[Job]) -> None:
        lm = self.summarizer
        t0, c0 = time.perf_counter(), time.process_time()
        outs = lm.generate([j.prompt for j in jobs], max_new_tokens=self.cfg.summary_max_new_tokens,
                           num_beams=1, desc=None, max_input_tokens=self.cfg.summary_max_input_tokens)
        wall, cpu = (time.perf_counter() - t0) / len(jobs), (time.process_time() - c0) / len(jobs)
        for job, out in zip(jobs, outs):
            job.summary = out
            self.ctx.store.get_or_compute(NAMESPACE, job.key, lambda out=out: out, {
                "user": job.user, "item_ids": job.item_ids, "prompt": job.prompt, "summarizer": dict(lm.ident),
                "decoding": self.decoding, "selection": self.cfg.selection, "seed": self.ctx.seed})
            self.misses += 1
            self.seconds.append(wall)
            self.cpu_seconds.append(cpu)

    # ------------------------------------------------------------------ the final prompt
    def compose_prompt(self, ex: Example, summary: str, items: Sequence[dict[str, Any]]) -> str:
        """``header + summary + "\n" + LaMP RAG prompt`` in at most ``backbone.max_input_tokens`` tokens."""
        tok, spec = TokenCounter(self.ctx.lm), self.ctx.spec
        budget = int(self.ctx.cfg.backbone.max_input_tokens)
        header = self.cfg.summary_header
        cap = int(self.cfg.summary_share * budget) - tok.count(header + "\n")
        text = tok.truncate(summary.strip(), cap)[0] if cap > 0 else ""
        if text:
            rest = budget - tok.count(f"{header}{text}\n")
            rag = build_rag_prompt(spec, ex.input, list(items), tok, rest)  # the plain input when k = 0
            while text:  # a long input outran LaMP's budget: the summary yields, token by token
                prompt = f"{header}{text}\n{rag}"
                over = tok.count(prompt) - budget
                if over <= 0:
                    return prompt
                text = tok.truncate(text, tok.count(text) - over)[0]
        if summary.strip():
            self.n_dropped += 1
        rag = build_rag_prompt(spec, ex.input, list(items), tok, budget)  # exactly the plain RAG prompt
        if tok.count(rag) <= budget:
            return rag
        self.n_cut += 1  # the input alone is over budget: cut at B, as the LanguageModel cuts any prompt
        return tok.truncate(rag, budget)[0]

    def retrieve(self, examples: Sequence[Example]) -> list[list[dict[str, Any]]]:
        """The top ``k`` profile items per example from the configured ranker (none when k = 0)."""
        k = self.cfg.k
        if k <= 0:
            return [[] for _ in examples]
        return retrieve_top_k(self.ctx, examples, self.cfg.retriever, k)

    def build_prompts(self, examples: Sequence[Example]) -> list[str]:
        summaries = self.summaries(examples)
        return [self.compose_prompt(ex, s, items)
                for ex, s, items in zip(examples, summaries, self.retrieve(examples))]

    def predict(self, examples: Sequence[Example]) -> Prediction:
        prompts = self.build_prompts(examples)
        raw, final = self.ctx.lm.answer(prompts)
        return Prediction(final, raw=raw, prompts=prompts)

    def diagnostics(self) -> dict[str, Any]:
        """``summaries.jsonl``: every summary the run used (user, item ids, text, cached or written), for reviewers."""
        return {"summaries.jsonl": [dict(sorted(r.items())) for r in self.records.values()]}

    def cost(self) -> dict[str, Any]:
        sizes = [len(r["summary"].encode()) for r in self.records.values()]
        return {"trainable_params": 0,
                "stored_bytes_per_user": round(sum(sizes) / len(sizes)) if sizes else 0,
                "summaries": len(self.records), "summary_cache_hits": self.hits,
                "summary_cache_misses": self.misses,
                "summarize_s_per_user": _mean(self.seconds), "summarize_cpu_s_per_user": _mean(self.cpu_seconds),
                "summarizer": self.summarizer.ident.get("id") if self.records else None,
                "selection": self.cfg.selection, "k": self.cfg.k,
                "summaries_dropped_for_budget": self.n_dropped, "prompts_cut_to_budget": self.n_cut}


@register_method("summary_only")
class SummaryOnly(SummaryAugmented):
    """The summary and the plain LaMP input, no retrieved items (the paper's sparse / cold-start setting)."""

    Config = SummaryOnlyConfig


def _mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def _unreachable() -> Any:
    raise AssertionError("baselines/summary.py: store entry vanished between has() and load()")
