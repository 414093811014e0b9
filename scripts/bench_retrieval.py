"""Measured, not a test: retrieval speed and cache effect on the LaMP-mini pack (issue 3).

(a) BM25: ``benchmark.retrieval.bm25.bm25_rank_many`` against rank_bm25 used as LaMP uses it (one ``BM25Okapi`` per
    question over ``str.split`` tokens, ``get_top_n``), on every question of every split of a task, from raw
    strings to rankings. Identity of the top-k (k = 1, 4) and of the full ranking is checked on every question.
(b) Dense: cold vs warm encode + rank through the content-hash store (a fresh temporary cache dir, then the same
    again as a new process would: in-memory rows dropped, a new Store on the same dir). Also "embeddings warm":
    rankings deleted, embeddings kept (another k, split or method). Model loading is reported on its own.

Times are the best of ``--repeats`` runs (wall clock; the machine may be shared, so the two BM25s run in turns).
Usage::

    .venv/bin/python scripts/bench_retrieval.py                    # largest mini task (most profile items)
    .venv/bin/python scripts/bench_retrieval.py --tasks all --skip-dense
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rank_bm25 import BM25Okapi  # noqa: E402

from benchmark.retrieval.bm25 import bm25_rank_many  # noqa: E402
from benchmark.data.reader import read_split  # noqa: E402
from benchmark.data.example import Example  # noqa: E402
from benchmark.data.tasks import load_task, task_names  # noqa: E402

SPLITS = ("train", "dev", "test")
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lamp_mini"


@lru_cache(maxsize=None)
def load_examples(root: Path, task: str) -> list[Example]:
    spec = load_task(task)
    return [ex for s in SPLITS for ex in read_split(root, spec, s).examples]


def timed_rank(tmp: Path, spec, exs: list[Example], make_ranker) -> tuple[float, dict]:
    """Seconds and cache stats of ranking ``exs`` as a new process would: in-memory tables dropped, a new Store
    on ``tmp`` (cold when it is empty, warm on the second call); ``make_ranker(store)`` builds the ranker."""
    from benchmark.retrieval.rankers import rank_examples
    from benchmark.retrieval.table import forget_tables
    from benchmark.cache.store import Store

    forget_tables()
    store = Store(tmp)
    t = time.perf_counter()
    rank_examples(store, spec, make_ranker(store), exs)
    return time.perf_counter() - t, store.stats()


def best_of(fns, repeats: int) -> list[tuple[float, object]]:
    """(best time, result) of each function over ``repeats`` runs, run in turns (a, b, a, b, ...) so that a
    shared machine's load changes hit them alike."""
    best, out = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            out[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return list(zip(best, out))


def lamp_rank_bm25(queries: list[str], corpora: list[list[str]]) -> list[list[int]]:
    """LaMP's call per question (prompts.py), full order so every k can be compared."""
    out = []
    for q, docs in zip(queries, corpora):
        if not docs:
            out.append([])
            continue
        bm = BM25Okapi([d.split() for d in docs])
        out.append(bm.get_top_n(q.split(), list(range(len(docs))), n=len(docs)))
    return out


def bench_bm25(root: Path, task: str, repeats: int) -> dict:
    spec = load_task(task)
    exs = load_examples(root, task)
    queries = [spec.retrieval_query(ex.input) for ex in exs]
    corpora = [[spec.document(it) for it in ex.profile] for ex in exs]
    (t_ref, ref), (t_new, new) = best_of([lambda: lamp_rank_bm25(queries, corpora),
                                          lambda: bm25_rank_many(queries, corpora)], repeats)
    mism = {k: sum(a[:k] != b[:k] for a, b in zip(ref, new)) for k in (1, 4)}
    return {"task": task, "questions": len(exs), "items": sum(len(c) for c in corpora),
            "distinct": len({d for c in corpora for d in c}), "rank_bm25_s": t_ref, "ours_s": t_new,
            "speedup": t_ref / t_new, "top1_mismatch": mism[1], "top4_mismatch": mism[4],
            "full_mismatch": sum(a != b for a, b in zip(ref, new))}


def bench_dense(root: Path, task: str, repeats: int) -> dict:
    from types import SimpleNamespace

    from benchmark.runs.config import compose
    from benchmark.contract.context import Context
    from benchmark.models.loading import load_embedder
    from benchmark.retrieval.rankers import DenseRanker

    spec = load_task(task)
    exs = load_examples(root, task)
    t0 = time.perf_counter()
    embedder = load_embedder(compose(task, "dense", ["data.source=mini"]).embedder)
    t_load = time.perf_counter() - t0
    source = SimpleNamespace(embedder=embedder, progress=Context.progress)   # what a run's context offers
    tmp = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    try:
        def run() -> tuple[float, dict]:
            return timed_rank(tmp, spec, exs, lambda store: DenseRanker(source, store))

        t_cold, cold_stats = run()
        t_warm, warm_stats = min((run() for _ in range(repeats)), key=lambda r: r[0])
        emb_warm = []
        for _ in range(repeats):
            shutil.rmtree(tmp / "rankings", ignore_errors=True)
            emb_warm.append(run())
        t_emb, emb_stats = min(emb_warm, key=lambda r: r[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"task": task, "questions": len(exs), "texts": len({spec.document(it) for ex in exs for it in ex.profile}),
            "embedder": embedder.ident["id"], "load_s": t_load, "cold_s": t_cold, "warm_s": t_warm,
            "emb_warm_s": t_emb, "speedup": t_cold / t_warm, "cold": cold_stats, "warm": warm_stats,
            "emb_warm": emb_stats}


def largest_task(root: Path) -> str:
    sizes = {t: sum(len(ex.profile) for ex in load_examples(root, t)) for t in task_names() if (root / t).exists()}
    return max(sizes, key=sizes.get)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("LAMP_MINI", DEFAULT_ROOT)))
    ap.add_argument("--tasks", default="largest", help="largest | all | comma-separated task names")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-dense", action="store_true")
    args = ap.parse_args()
    if not args.root.exists():
        sys.exit(f"bench_retrieval: no LaMP pack at {args.root} (set --root or LAMP_MINI)")
    largest = largest_task(args.root)
    tasks = ([largest] if args.tasks == "largest" else
             [t for t in task_names() if (args.root / t).exists()] if args.tasks == "all" else args.tasks.split(","))
    print(f"largest mini task by profile items (train+dev+test): {largest}; load average {os.getloadavg()[0]:.1f}\n")
    print("| task | questions | profile items | distinct docs | rank_bm25 (s) | ours (s) | speedup "
          "| top-1 / top-4 / full mismatches |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for task in tasks:
        r = bench_bm25(args.root, task, args.repeats)
        print(f"| {task} | {r['questions']} | {r['items']} | {r['distinct']} | {r['rank_bm25_s']:.3f} | "
              f"{r['ours_s']:.3f} | {r['speedup']:.1f}x | {r['top1_mismatch']} / {r['top4_mismatch']} / "
              f"{r['full_mismatch']} |", flush=True)
    if args.skip_dense:
        return
    d = bench_dense(args.root, largest, args.repeats)
    print(f"\nDense ({d['embedder']}) on {d['task']}: {d['questions']} questions, {d['texts']} distinct history "
          f"texts; embedder load {d['load_s']:.1f} s (not included)\n")
    print("| run | encode + rank (s) | embeddings hits / misses | rankings hits / misses |")
    print("|---|---:|---|---|")
    for label, key, stats in (("cold (empty cache)", "cold_s", d["cold"]), ("warm (same again)", "warm_s", d["warm"]),
                              ("embeddings warm, rankings deleted", "emb_warm_s", d["emb_warm"])):
        e, r = stats.get("embeddings", {}), stats.get("rankings", {})
        print(f"| {label} | {d[key]:.3f} | {e.get('hits', 0)} / {e.get('misses', 0)} | "
              f"{r.get('hits', 0)} / {r.get('misses', 0)} |")
    print(f"\ncold / warm: {d['speedup']:.0f}x; cold / embeddings-warm: {d['cold_s'] / d['emb_warm_s']:.1f}x")


if __name__ == "__main__":
    main()
