"""Estimate the wall time of `make bench TASK=all METHOD=all` under a question cap from recorded rows.

    python scripts/grid_estimate.py [--commit f2d33ad] [--limit 150] [--cap oppu=50 --cap oppu_rag=50]
                                    [--exclude pplug,pplug_rag,pplug_mean,pplug_noinst,tasktuned]

For every finished row of the given commit (one protocol: the same profile and question cap), the run's
prediction time per evaluated question (``timings.predict_s / n``: every method's prediction work, per-user
training of OPPU and summary writing included, grows with the number of questions and users) is multiplied by
the new number of questions (``min(limit, n_available)``, or a method's cap), and its training time
(``timings.fit_s``: stage-1 or Persona-Plug training on the unchanged training cap) is added as is.
Excluded methods are listed apart (their settings are someone else's budget). Prints per task and in total.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--commit", default="f2d33ad")
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--cap", action="append", default=[], help="method=N (nested per-method cap)")
    ap.add_argument("--exclude", default="")
    a = ap.parse_args()
    caps = {k: int(v) for k, v in (c.split("=") for c in a.cap)}
    excluded = {m for m in a.exclude.split(",") if m}
    rows = [json.loads(x) for x in Path(a.results, "runs.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["status"] == "finished" and r["git"]["commit"].startswith(a.commit)]
    per_task, apart = defaultdict(float), defaultdict(float)
    per_method = defaultdict(float)
    for r in rows:
        t = r["timings"]
        n_new = min(a.limit, int(r["data"].get("n_available") or r["n"]))
        n_new = min(n_new, caps.get(r["method"], n_new))
        est = float(t["fit_s"]) + float(t["predict_s"]) / max(int(r["n"]), 1) * n_new
        (apart if r["method"] in excluded else per_task)[r["task"]] += est
        per_method[r["display"] if r["method"] not in excluded else "(excluded) " + r["display"]] += est
    print(f"{len(rows)} rows of commit {a.commit}; limit {a.limit}; caps {caps or '-'}")
    for task in sorted(set(per_task) | set(apart)):
        print(f"  {task}: {per_task[task] / 60:6.1f} min" + (f"  (+ excluded {apart[task] / 60:.1f} min)" if apart[task] else ""))
    total, rest = sum(per_task.values()), sum(apart.values())
    print(f"total: {total / 3600:.2f} h" + (f"  (+ excluded methods at their recorded settings: {rest / 3600:.2f} h)" if rest else ""))
    for name, s in sorted(per_method.items(), key=lambda x: -x[1]):
        print(f"    {name:32s} {s / 60:6.1f} min")


if __name__ == "__main__":
    main()
