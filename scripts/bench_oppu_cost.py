"""Measure OPPU's per-user cost on real data: stage-1 time, per-user LoRA train time, adapter bytes, resume.

    .venv/bin/python scripts/bench_oppu_cost.py --task LaMP_2 --users 6 [--method oppu] [--zeroshot] [key=value ...]

Runs the method on the first ``--users`` evaluated questions of the LaMP-mini pack (profile ``cpu``: the
embedded SmolLM2-135M, answer mode ``choice``) with a *fresh* adapter store in a temp dir, so every adapter is
trained, then a second pass over the same store (resume: nothing trained, same answers). Prints the first pass
as one JSON line as soon as it ends, then the full report: wall and CPU times, the method's cost() fields, the
official metrics, and with ``--zeroshot`` the zero-shot metrics on the same questions. Not a test: it takes tens
of minutes on a shared 2-core CPU (stage 1 dominates).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="LaMP_2")
    ap.add_argument("--users", type=int, default=6, help="evaluated questions (data.limit)")
    ap.add_argument("--method", default="oppu")
    ap.add_argument("--zeroshot", action="store_true", help="also score zero-shot on the same questions")
    ap.add_argument("--no-resume", action="store_true", help="skip the second (resume) pass")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)

    from benchmark.runs.config import compose
    from benchmark.runs.experiment import prepare_data, run

    with tempfile.TemporaryDirectory(prefix="oppu_cost_") as tmp:
        overrides = ["data.source=mini", f"data.limit={a.users}", f"run.cache_dir={tmp}", *a.overrides]
        cfg = compose(a.task, a.method, overrides, profile="cpu")
        dm = prepare_data(cfg)
        report: dict = {"task": a.task, "method": a.method, "n_eval": len(dm.eval_examples),
                        "n_train": len(dm.train_examples),
                        "threads": int(cfg.backbone.threads), "answer_mode": str(cfg.decoding.answer_mode)}
        first = run(cfg, dm)
        report.update(fit_s=round(first.timings["fit_s"], 1), predict_s=round(first.timings["predict_s"], 1),
                      cost=first.cost, metrics=first.aggregates)
        print(json.dumps({"first_pass": report}, default=str), flush=True)   # kept if a later phase fails
        if not a.no_resume:
            again = run(cfg, dm)
            report["resume"] = {"fit_s": round(again.timings["fit_s"], 1),
                                "predict_s": round(again.timings["predict_s"], 1),
                                "same_outputs": again.prediction.outputs == first.prediction.outputs,
                                "n_users_trained": again.cost["n_users_trained"],
                                "n_users_resumed": again.cost["n_users_resumed"]}
        if a.zeroshot:
            zero = run(compose(a.task, "zeroshot", overrides, profile="cpu"), dm)
            report["zeroshot"] = {"predict_s": round(zero.timings["predict_s"], 1), "metrics": zero.aggregates}
        store_bytes = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file() and "adapters" in str(f))
        report["adapter_store_bytes_on_disk"] = store_bytes
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
