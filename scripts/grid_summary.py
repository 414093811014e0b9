"""Summarise one grid run from results/runs.jsonl: the tables the README's "Measured here" section quotes.

    .venv/bin/python scripts/grid_summary.py --commit f2d33ad [--runs results/runs.jsonl]

Reads finished rows of one code commit (the grid's, named in every row) and prints markdown: the headline metric
per task and method (CIs are in results/leaderboard.md), the wall time per task (sum of the runs' own
``timings.total_s``, so an interrupted and resumed grid is still counted once per run), and the per-method cost
fields the issues ask for (Persona-Plug train/eval seconds and trainable parameters, OPPU per-user train seconds
and adapter bytes, summary seconds per user). Nothing is measured here; every number is a field of a row.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.runs import provenance as runs  # noqa: E402

TASKS = [f"LaMP_{i}" for i in range(1, 8)]
HEADLINE = {"LaMP_1": "accuracy", "LaMP_2": "accuracy", "LaMP_3": "MAE"}  # others: rouge-1


def headline(task: str) -> str:
    return HEADLINE.get(task, "rouge-1")


def table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)])


def scores(rows: list[dict]) -> str:
    by = defaultdict(dict)
    for r in rows:
        by[r["display"]][r["task"]] = r["metrics"][headline(r["task"])]["value"]
    group = {r["display"]: r.get("group", "llm") for r in rows}
    order = sorted(by, key=lambda d: (group[d] != "reference", d))
    body = [[d, *(f"{by[d][t]:.3f}" if t in by[d] else "–" for t in TASKS)] for d in order]
    return table(["method", *(f"{t} {headline(t).replace('rouge-1', 'R-1')}" for t in TASKS)], body)


def wall(rows: list[dict]) -> str:
    per = defaultdict(float)
    for r in rows:
        per[r["task"]] += r["timings"]["total_s"]
    body = [[t, str(sum(r["task"] == t for r in rows)), f"{per[t] / 60:.1f}"] for t in TASKS if t in per]
    body.append(["all", str(len(rows)), f"{sum(per.values()) / 60:.1f}"])
    return table(["task", "runs", "minutes (sum of run times)"], body)


def _plug(rs: list[dict]) -> list[str]:
    c = [r["cost"] for r in rs]
    return [f"{mean(x['train_seconds'] for x in c):.0f} s train ({c[0]['train_steps']} steps), "
            f"{mean(r['timings']['predict_s'] for r in rs):.0f} s eval ({rs[0]['n']} q)",
            f"{max(x['trainable_params'] for x in c):,} params, "
            f"{max(x['checkpoint_bytes'] for x in c) / 1e6:.1f} MB shared checkpoint"]


def _oppu(rs: list[dict]) -> list[str]:
    c = [r["cost"] for r in rs]
    return [f"stage 1 {mean(x['stage1_train_s'] for x in c):.0f} s; "
            f"per user {mean(x['user_train_s_mean'] for x in c):.1f} s wall / "
            f"{mean(x['user_train_cpu_s_mean'] for x in c):.1f} CPU-s "
            f"({mean(x['user_pairs_mean'] for x in c):.1f} pairs)",
            f"{c[0]['trainable_params_per_user']:,} params, "
            f"{mean(x['adapter_bytes_per_user_mean'] for x in c) / 1e6:.2f} MB per user"]


def _summary(rs: list[dict]) -> list[str] | None:
    c = [r["cost"] for r in rs if r["cost"].get("summary_cache_misses")]  # cold runs only: a cache hit costs ~0
    return c and [f"{mean(x['summarize_s_per_user'] for x in c):.1f} s wall / "
                  f"{mean(x['summarize_cpu_s_per_user'] for x in c):.1f} CPU-s per user summary "
                  f"({len(c)} tasks summarised cold)", f"{mean(x['stored_bytes_per_user'] for x in c):.0f} B per user"]


COSTS = {**dict.fromkeys(("pplug", "pplug_rag", "pplug_mean", "pplug_noinst", "pplug_labels", "tasktuned"), _plug),
         **dict.fromkeys(("oppu", "oppu_rag"), _oppu), **dict.fromkeys(("summary", "summary_only"), _summary)}


def costs(rows: list[dict]) -> str:
    body = []
    for method, fmt in COSTS.items():
        got = [r for r in rows if r["method"] == method]
        if got and (cells := fmt(got)):
            body.append([method, *cells])
    return table(["method", "time (mean over tasks)", "size"], body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", required=True, help="commit prefix of the grid's rows")
    ap.add_argument("--runs", type=Path, default=Path("results/runs.jsonl"))
    a = ap.parse_args(argv)
    rows = [r for r in runs.read_rows(a.runs)
            if r.get("status") == "finished" and str(r["git"]["commit"]).startswith(a.commit)]
    if not rows:
        sys.exit(f"{a.runs}: no finished row of commit {a.commit}")
    print(f"{len(rows)} finished rows of commit {a.commit}\n\n{scores(rows)}\n\n{wall(rows)}\n\n{costs(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
