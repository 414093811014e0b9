"""Paired comparison of two benchmark runs on their per-example scores.

    python -m benchmark.report.compare RUN_A RUN_B [--results results] [--metric accuracy] [--n-boot 2000] [--seed 0]

Two runs are comparable only when they scored the *same* examples of the *same* task on the *same* data
(task name, data digest, eval split and the set of example ids all equal); anything else is refused with a
message that names both runs and what differs. Scores are never recomputed from model outputs: the per-example
records the runner wrote (``results/runs/<run_id>/samples.jsonl``, field ``scores``) are aligned by example id
(sorted, so the result does not depend on file order) and passed to :func:`benchmark.scoring.metrics.paired_test`
(paired bootstrap, Koehn 2004; Berg-Kirkpatrick et al. 2012) and :func:`benchmark.scoring.metrics.aggregate`.

The rows and samples are read by ``benchmark/report/rows.py``; the pairing and the test live in
``benchmark/report/pairing.py`` (shared with the leaderboard's significance markers); this module is the CLI.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from benchmark.report.pairing import ALPHA, DEFAULT_BOOT, MetricComparison, NotComparable, compare_runs
from benchmark.report.plots import arrow
from benchmark.report.rows import find_row, load_rows


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
        rows = load_rows(args.results)
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
