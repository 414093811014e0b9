"""One run: (task, method, variant) under one resolved config -> a run folder and one row.

    data (LampDataModule) -> method.fit(train) -> method.predict(eval) -> official scorer -> CIs -> row

The same seed gives the same predictions: every run starts from ``seed_everything(cfg.seed)``, and methods draw
any randomness from RNGs seeded by the config (never from global state left by an earlier run).

Under a launcher (torchrun, srun) every rank runs this same function: fit on rank 0 first, prediction split over
the ranks and gathered on rank 0, which alone scores and records (benchmark/runs/ranks.py).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from benchmark.contract.prediction import Prediction
from benchmark.runs import provenance as runs
from benchmark.runs.ranks import current as current_ranks
from benchmark.runs.config import config_hash, save_resolved, to_container
from benchmark.contract.context import Context
from benchmark.cache.store import Store
from benchmark.data.tasks import spec_from_config


@dataclass
class RunOutcome:
    row: dict[str, Any]
    run_dir: Path
    samples: list[dict[str, Any]] = field(default_factory=list)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_data(cfg: DictConfig):
    """A set-up LampDataModule for this config (the caller may reuse it across methods of one task)."""
    from benchmark.data.datamodule import LampDataModule

    dm = LampDataModule(cfg, spec_from_config(cfg.task))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def execute(cfg: DictConfig, *, variant: str = "", data=None, git: dict | None = None,
            results_dir: Path | None = None) -> RunOutcome:
    """Run one (task, method) to a written run folder and a row appended to ``<results>/runs.jsonl``."""
    import lightning

    from benchmark.contract.registry import get_method
    from benchmark.scoring import metrics

    t0 = time.perf_counter()
    spec = spec_from_config(cfg.task)
    method_name = str(cfg.method.name)
    display = f"{method_name} ({variant})" if variant else method_name
    chash = config_hash(cfg)
    results = Path(results_dir or cfg.run.results_dir)
    git = git or runs.git_state()
    lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)

    dm = data or prepare_data(cfg)
    ranks = current_ranks()
    run_id = ranks.broadcast(runs.make_run_id(spec.name, display, chash))
    run_dir = results / "runs" / run_id
    own_dir = run_dir if ranks.is_zero else run_dir / f"rank{ranks.rank}"    # other ranks: their method's files
    own_dir.mkdir(parents=True, exist_ok=True)
    if ranks.is_zero:
        save_resolved(cfg, run_dir / "config.yaml")
    store = Store(cfg.run.cache_dir)
    ctx = Context(cfg, data=dm, store=store, run_dir=own_dir)
    method_cls = get_method(method_name)
    method = method_cls(ctx)
    truncated0 = ctx.lm.n_truncated if method_cls.uses_backbone else 0

    train, evals = list(dm.train_examples), list(dm.eval_examples)
    t_fit = time.perf_counter()
    ranks.zero_first(lambda: method.fit(train))
    fit_s = time.perf_counter() - t_fit
    t_pred = time.perf_counter()
    pred = ranks.predict(lambda share: _prediction(method, share), evals, by=method_cls.shard_by)
    predict_s = time.perf_counter() - t_pred
    if pred is None:                                  # not rank 0: rank 0 scores and records
        return RunOutcome({}, run_dir)
    outputs = pred.outputs
    if len(outputs) != len(evals):
        raise RuntimeError(f"{method_name}.predict returned {len(outputs)} outputs for {len(evals)} examples")
    raw = pred.raw_or_outputs()
    prompts = pred.prompts_or([ex.input for ex in evals])

    t_score = time.perf_counter()
    has_gold = all(ex.gold is not None for ex in evals)
    metric_block, n_unparsable, per_example = {}, None, [{} for _ in evals]
    if has_gold and evals:
        scores = metrics.score(spec, list(outputs), [ex.gold for ex in evals])
        cis = metrics.bootstrap_ci(spec, scores.per_example, n_boot=int(cfg.run.bootstrap), seed=int(cfg.seed))
        hib = {m.name: m.higher_is_better for m in spec.metrics}
        metric_block = {name: {"value": value, "ci95": list(cis.get(name, (value, value))),
                               "higher_is_better": hib.get(name, True)} for name, value in scores.aggregates.items()}
        n_unparsable, per_example = scores.n_unparsable, scores.per_example
    score_s = time.perf_counter() - t_score

    samples = [{"id": ex.id, "user_id": ex.user_id, "prompt_sha256": sha(p), "raw_output": r, "output": o,
                "gold": ex.gold, "scores": s}
               for ex, p, r, o, s in zip(evals, prompts, raw, outputs, per_example)]
    runs.write_jsonl(run_dir / "samples.jsonl", samples)
    runs.write_json(run_dir / "predictions.json",
                    {"task": spec.name, "golds": [{"id": ex.id, "output": o} for ex, o in zip(evals, outputs)]})
    if has_gold:  # the golds of exactly the evaluated ids, so `python -m benchmark.scoring.score` re-scores the run as is
        runs.write_json(run_dir / "golds.json",
                        {"task": spec.name, "golds": [{"id": ex.id, "output": ex.gold} for ex in evals]})

    loaded = ctx.loaded()
    cost = dict(method.cost())
    if method_cls.uses_backbone and "backbone" in loaded:
        cost["n_truncated_prompts"] = ctx.lm.n_truncated - truncated0
    total_s = time.perf_counter() - t0
    row = {
        "run_id": run_id, "status": "finished", "task": spec.name, "task_version": spec.version,
        "method": method_name, "variant": variant, "display": display,
        "group": "llm" if method_cls.uses_backbone else "reference",
        "profile": str(cfg.profile), "answer_mode": _answer_mode(cfg, spec, method_cls.uses_backbone),
        "data": data_block(dm.provenance),
        "n": len(evals), "n_train": len(train), "n_users": len({ex.user_key for ex in evals}),
        "n_unparsable": n_unparsable, "metrics": metric_block,
        "config_hash": chash, "config": to_container(cfg), "git": git,
        "packages": runs.package_versions(), "host": runs.host_info(),
        "backbone": loaded.get("backbone"), "embedder": loaded.get("embedder"), "seed": int(cfg.seed),
        "ranks": ranks.world,
        "timings": {"fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3), "score_s": round(score_s, 3),
                    "total_s": round(total_s, 3),
                    "eval_s_per_1k": round(1000 * predict_s / max(len(evals), 1), 3)},
        "cost": cost, "cache": store.stats(), "finished_at": runs.now_iso(),
        "samples": str((run_dir / "samples.jsonl").relative_to(results)),
    }
    runs.write_json(run_dir / "row.json", row)
    runs.append_row(results / "runs.jsonl", row)
    return RunOutcome(row, run_dir, samples)


def _prediction(method, examples: list) -> Prediction:
    """``method.predict`` as a Prediction (methods that still return strings leave raw/prompts on the method)."""
    out = method.predict(examples)
    if isinstance(out, Prediction):
        return out
    raw, prompts = getattr(method, "last_raw", None), getattr(method, "last_prompts", None)
    return Prediction(list(out), raw=list(raw) if raw else None, prompts=list(prompts) if prompts else None)


def data_block(prov: dict[str, Any]) -> dict[str, Any]:
    """The row's data provenance: the flat fields a leaderboard groups by, plus the full record."""
    ev, sel = prov["sources"]["eval"], prov.get("selection", {})
    return {"source": ev["kind"], "root": ev["root"], "digest": prov["digest"],
            "train_source": prov["sources"]["train"]["kind"], "train_split": prov["splits"]["train"],
            "eval_split": prov["splits"]["eval"], "limit": prov["limits"]["limit"],
            "train_limit": prov["limits"]["train_limit"], "n_available": sel.get("eval", {}).get("n_total"),
            "ids_sha256": sel.get("eval", {}).get("ids_sha256"), "provenance": prov}


def _answer_mode(cfg: DictConfig, spec, uses_backbone: bool) -> str:
    if not uses_backbone:
        return "rule"
    from benchmark.models.lm import answer_mode
    return answer_mode(spec, {"answer_mode": str(cfg.decoding.answer_mode)})
