"""A small, bounded sweep of Persona-Plug CPU settings on the DEV split of a data pack (never test).

Each ``--point`` is one set of ``method.*`` overrides (space-separated ``key=value``); every point is run for every
``--methods`` entry that accepts it, trained on a seeded ``--train-limit`` sample of the train split and scored on
a seeded ``--limit`` sample of dev with the official metrics. One JSON line per run goes to ``--out`` and a
Markdown table is printed at the end (this is how docs/personaplug.md's CPU table was made).

    .venv/bin/python scripts/sweep_pplug.py --task LaMP_2 --limit 60 --train-limit 120 \\
        --methods pplug,tasktuned --point "lr=1e-4" --point "lr=1e-3 augment_copies=2"

Trained plugs are cached in the store like any run, so re-running a point only re-predicts.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.runs.config import compose  # noqa: E402
from benchmark.runs.experiment import prepare_data, run  # noqa: E402


def run_point(task: str, method: str, point: str, base: list[str], data_cache: dict) -> dict:
    extra = [f"method.{kv}" for kv in point.split()] if method != "zeroshot" else []
    cfg = compose(task, method, [*base, *extra])
    if cfg.data.eval_split == "test":
        raise SystemExit("scripts/sweep_pplug.py: settings are chosen on dev, never on test")
    key = (task, json.dumps(sorted(base)))
    if key not in data_cache:
        data_cache[key] = prepare_data(cfg)
    out = run(cfg, data_cache[key])
    t, cost = out.timings, out.cost
    return {"task": task, "method": method, "point": point if method != "zeroshot" else "",
            "n_eval": len(out.examples), "n_train": out.n_train, "metrics": out.aggregates,
            "fit_s": round(t["fit_s"], 1), "predict_s": round(t["predict_s"], 1),
            "fit_cpu_s": round(t["fit_cpu_s"], 1), "predict_cpu_s": round(t["predict_cpu_s"], 1),
            "train_steps": cost.get("train_steps"),
            "loss_first": cost.get("train_loss_first"), "loss_last": cost.get("train_loss_last"),
            "cached": cost.get("checkpoint_cached"),
            "answers": sorted(set(out.prediction.outputs))[:6] if out.spec.labels else None}


def table(rows: list[dict]) -> str:
    names = sorted({k for r in rows for k in r["metrics"]})
    head = ["task", "method", "point", *names, "train steps", "loss first -> last", "fit CPU s", "predict CPU s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        loss = (f"{r['loss_first']:.2f} -> {r['loss_last']:.2f}" if r.get("loss_first") is not None else "")
        vals = [f"{r['metrics'][n]:.3f}" if n in r["metrics"] else "" for n in names]
        lines.append("| " + " | ".join([r["task"], r["method"], r["point"] or "-", *vals, str(r["train_steps"] or ""),
                                        loss, str(r["fit_cpu_s"]), str(r["predict_cpu_s"])]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", required=True)
    ap.add_argument("--methods", default="pplug")
    ap.add_argument("--point", action="append", default=[], help="method overrides, e.g. 'lr=1e-3 epochs=2'")
    ap.add_argument("--limit", type=int, default=60, help="dev questions (seeded sample)")
    ap.add_argument("--train-limit", type=int, default=120, help="train questions (seeded sample)")
    ap.add_argument("--source", default="mini")
    ap.add_argument("--out", default="results/sweeps/pplug_cpu.jsonl")
    ap.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = ap.parse_args(argv)
    base = [f"data.source={args.source}", "data.eval_split=dev", f"data.limit={args.limit}",
            f"data.train_limit={args.train_limit}", *args.overrides]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, data_cache = [], {}
    for task in args.task:
        for method in args.methods.split(","):
            for point in (args.point or [""]) if method != "zeroshot" else [""]:
                row = run_point(task, method, point, base, data_cache)
                rows.append(row)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
