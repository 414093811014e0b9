"""A small, bounded sweep of Persona-Plug settings, judged on held-out TRAINING users only.

Each ``--point`` is one set of ``method.*`` overrides (space-separated ``key=value``) laid over the profile's
settings; every point is run for every ``--methods`` entry. A point only trains: the method holds out
``select_fraction`` of the training *users* (``select: val_loss`` is forced on), and the sweep reads the held-out
loss, attention entropy and step time from the training curve. No eval split is loaded into a model, predicted or
scored: ``dev`` stays the reported split and ``test`` is never read by this script (the DataModule still reads
the dev questions file for its provenance; the seeded train sample does not depend on it).

    .venv/bin/python scripts/sweep_pplug.py --task LaMP_2 --task LaMP_3 --methods pplug \\
        --point "lr=3e-4" --point "lr=1e-3" --point "lr=1e-3 learn_temperature=true"

One JSON line per point goes to ``--out``; a Markdown table is printed at the end. Trained plugs go to the
store under the same content key a grid run computes, so when the grid's settings equal a point (same profile,
same training sample, same method values) the grid reuses the trained plug instead of training it again.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lightning  # noqa: E402

from benchmark.cache.store import Store  # noqa: E402
from benchmark.contract.context import Context  # noqa: E402
from benchmark.contract.registry import get_method  # noqa: E402
from benchmark.runs.config import compose  # noqa: E402
from benchmark.runs.experiment import prepare_data  # noqa: E402

INFO = ("train_questions", "heldout_questions", "train_steps", "epochs_run", "stopped_early", "seconds_per_step",
        "val_loss_first", "val_loss_best", "val_best_step", "val_loss_last", "attn_entropy_first",
        "attn_entropy_last", "attn_uniform_last", "inst_norm_last", "user_norm_last", "checkpoint_cached")


def fit_point(task: str, method: str, point: str, base: list[str]) -> dict:
    """Train one point and return what the held-out training users say of it."""
    cfg = compose(task, method, [*base, "method.select=val_loss", *(f"method.{kv}" for kv in point.split())])
    lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = prepare_data(cfg)
    with tempfile.TemporaryDirectory(prefix="sweep-logs-") as logs:
        ctx = Context(cfg, data=dm, store=Store(cfg.run.cache_dir), log_dir=Path(logs))
        m = get_method(method)(ctx)
        m.fit(list(dm.train_examples))
        info = dict(m.info)
    return {"task": task, "method": method, "point": point, **{k: info.get(k) for k in INFO}}


def table(rows: list[dict]) -> str:
    head = ["task", "method", "point", "held-out loss first -> best (step)", "attn entropy first -> last / uniform",
            "steps", "s/step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        loss = f"{r['val_loss_first']:.3f} -> {r['val_loss_best']:.3f} ({r['val_best_step']})"
        ent = (f"{r['attn_entropy_first']:.3f} -> {r['attn_entropy_last']:.3f} / {r['attn_uniform_last']:.3f}"
               if r.get("attn_entropy_last") is not None else "-")
        lines.append("| " + " | ".join([r["task"], r["method"], r["point"] or "-", loss, ent, str(r["train_steps"]),
                                        str(r["seconds_per_step"])]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", required=True)
    ap.add_argument("--methods", default="pplug")
    ap.add_argument("--point", action="append", default=[], help="method overrides, e.g. 'lr=1e-3 epochs=2'")
    ap.add_argument("--source", default="mini")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", default="results/sweeps/pplug_heldout.jsonl")
    ap.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = ap.parse_args(argv)
    base = [f"profile={args.profile}", f"data.source={args.source}", *args.overrides]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.task:
        for method in args.methods.split(","):
            for point in args.point or [""]:
                row = fit_point(task, method, point, base)
                rows.append(row)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
