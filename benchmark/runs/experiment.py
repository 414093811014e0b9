"""One run: (task, method, variant) under one resolved config, in two steps.

    run(cfg, data)      data (LampDataModule) -> method.fit(train) -> method.predict(eval) -> Prediction
                        -> official scorer -> CIs -> Outcome          (pure: writes no file)
    record(outcome)     Outcome -> run folder (config, predictions, golds, samples, prompts, diagnostics, the
                        Lightning training logs of benchmark.contract.trainlog) + one row

The grid calls both; scripts and perf tools call ``run`` alone. Under a launcher (torchrun, srun) every rank
calls ``run``: fit on rank 0 first, the questions split over the ranks and gathered on rank 0
(benchmark/runs/ranks.py), which alone scores and gets the Outcome to ``record``; the other ranks get None.
The same seed gives the same predictions: every run starts from ``seed_everything(cfg.seed)``, and methods draw
any randomness from RNGs seeded by the config (never from global state left by an earlier run).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning
from omegaconf import DictConfig

from benchmark.cache.store import Store, text_key
from benchmark.contract.context import Context
from benchmark.contract.prediction import Prediction
from benchmark.contract.registry import get_method
from benchmark.data.datamodule import LampDataModule
from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec, spec_from_config
from benchmark.models.lm import answer_mode, choice_norm
from benchmark.runs import provenance as runs
from benchmark.runs.config import config_hash, save_resolved, to_container
from benchmark.runs.ranks import Ranks
from benchmark.runs.ranks import current as current_ranks
from benchmark.scoring import metrics


@dataclass
class Outcome:
    """Everything one run produced; ``record`` turns it into a run folder and a row without re-running anything."""
    cfg: DictConfig
    variant: str
    spec: TaskSpec
    method: str
    uses_backbone: bool
    examples: list[Example]                 # the evaluated questions, in prediction order
    n_train: int
    prediction: Prediction
    per_example: list[dict[str, Any]]      # per-example scores ({} each when the split has no golds)
    metrics: dict[str, dict[str, Any]]     # name -> {"value", "ci95", "higher_is_better"}
    n_unparsable: int | None
    timings: dict[str, float]              # fit_s, predict_s, score_s, total_s (wall) and fit/predict CPU seconds
    cost: dict[str, Any]
    diagnostics: dict[str, Any]
    loaded: dict[str, Any]                 # identities of the models the run loaded (backbone, embedder)
    cache: dict[str, Any]                  # store hits and misses by namespace
    data: dict[str, Any]                   # the data module's provenance
    config_hash: str = ""
    ranks: int = 1                         # processes that shared the prediction (1 without a launcher)
    samples: list[dict[str, Any]] = field(default_factory=list)
    logs: Any = None                        # TemporaryDirectory of the Lightning training logs; record() keeps them

    @property
    def log_dir(self) -> Path | None:
        return Path(self.logs.name) if self.logs is not None else None

    @property
    def display(self) -> str:
        return f"{self.method} ({self.variant})" if self.variant else self.method

    @property
    def has_gold(self) -> bool:
        return all(ex.gold is not None for ex in self.examples)

    @property
    def aggregates(self) -> dict[str, float]:
        return {name: block["value"] for name, block in self.metrics.items()}


def prepare_data(cfg: DictConfig) -> LampDataModule:
    """A set-up LampDataModule for this config (the caller may reuse it across methods of one task)."""
    dm = LampDataModule(cfg, spec_from_config(cfg.task))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def run(cfg: DictConfig, data: LampDataModule | None = None, *, variant: str = "") -> Outcome | None:
    """Fit, predict and score one (task, method); no file is written (the store may fill its caches).
    Under a launcher: the Outcome on rank 0, None on the other ranks."""
    t0 = time.perf_counter()
    ranks = current_ranks()
    spec = spec_from_config(cfg.task)
    method_name = str(cfg.method.name)
    lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = data or prepare_data(cfg)
    store = Store(cfg.run.cache_dir)
    logs = tempfile.TemporaryDirectory(prefix="lamp-bench-logs-")   # removed with the Outcome unless recorded
    ctx = Context(cfg, data=dm, store=store, log_dir=Path(logs.name))
    method_cls = get_method(method_name)
    method = method_cls(ctx)
    truncated0 = ctx.lm.n_truncated if method_cls.uses_backbone else 0

    train, evals = list(dm.train_examples), list(dm.eval_examples)
    t_fit, c_fit = time.perf_counter(), time.process_time()
    ranks.zero_first(lambda: method.fit(train))
    fit_s, fit_cpu = time.perf_counter() - t_fit, time.process_time() - c_fit
    t_pred, c_pred = time.perf_counter(), time.process_time()
    pred = ranks.predict(method.predict, [replace(ex, gold=None) for ex in evals],  # golds stay with the scorer
                         by=method_cls.shard_by)
    predict_s, predict_cpu = time.perf_counter() - t_pred, time.process_time() - c_pred
    cost, diagnostics = _per_rank(ranks, dict(method.cost()), dict(method.diagnostics()))
    if pred is None:                                  # not rank 0: rank 0 scores and records
        return None
    if len(pred.outputs) != len(evals):
        raise RuntimeError(f"{method_name}.predict returned {len(pred.outputs)} outputs for {len(evals)} examples")

    t_score = time.perf_counter()
    metric_block, n_unparsable, per_example = {}, None, [{} for _ in evals]
    if evals and all(ex.gold is not None for ex in evals):
        scores = metrics.score(spec, list(pred.outputs), [ex.gold for ex in evals])
        cis = metrics.bootstrap_ci(spec, scores.per_example, n_boot=int(cfg.run.bootstrap), seed=int(cfg.seed))
        hib = {m.name: m.higher_is_better for m in spec.metrics}
        metric_block = {name: {"value": value, "ci95": list(cis.get(name, (value, value))),
                               "higher_is_better": hib.get(name, True)} for name, value in scores.aggregates.items()}
        n_unparsable, per_example = scores.n_unparsable, scores.per_example
    score_s = time.perf_counter() - t_score

    loaded = ctx.loaded()
    if method_cls.uses_backbone and "backbone" in loaded:
        cost["n_truncated_prompts"] = ctx.lm.n_truncated - truncated0
    return Outcome(
        cfg=cfg, variant=variant, spec=spec, method=method_name, uses_backbone=method_cls.uses_backbone,
        examples=evals, n_train=len(train), prediction=pred, per_example=per_example, metrics=metric_block,
        n_unparsable=n_unparsable,
        timings={"fit_s": fit_s, "predict_s": predict_s, "score_s": score_s, "total_s": time.perf_counter() - t0,
                 "fit_cpu_s": fit_cpu, "predict_cpu_s": predict_cpu},
        cost=cost, diagnostics=diagnostics, loaded=loaded, ranks=ranks.world, cache=store.stats(),
        data=dm.provenance, config_hash=config_hash(cfg), logs=logs)


def _per_rank(ranks: Ranks, cost: dict[str, Any], diagnostics: dict[str, Any]) -> tuple[dict, dict]:
    """Rank 0's cost with every rank's under ``cost["by_rank"]``; each diagnostics file merged over the ranks
    (``.jsonl``: the records of rank 0, then rank 1, ..., each with its ``rank``; ``.json``: ``{"rank<r>": ...}``)."""
    parts = ranks.gather((cost, diagnostics))
    if parts is None or ranks.world == 1:
        return cost, diagnostics
    merged: dict[str, Any] = {}
    for name in sorted({n for _, d in parts for n in d}):
        if name.endswith(".jsonl"):
            merged[name] = [{**rec, "rank": r} for r, (_, d) in enumerate(parts) for rec in d.get(name, [])]
        else:
            merged[name] = {f"rank{r}": d[name] for r, (_, d) in enumerate(parts) if name in d}
    return {**parts[0][0], "by_rank": [c for c, _ in parts]}, merged


def samples_of(outcome: Outcome) -> list[dict[str, Any]]:
    """One record per evaluated example: ids, prompt hash, raw and final output, gold, scores, any extras."""
    pred = outcome.prediction
    prompts = pred.prompts_or([ex.input for ex in outcome.examples])
    extras = pred.extras
    out = []
    for i, (ex, p, r, o, s) in enumerate(zip(outcome.examples, prompts, pred.raw_or_outputs(), pred.outputs,
                                             outcome.per_example)):
        out.append({"id": ex.id, "user_id": ex.user_id, "prompt_sha256": text_key(p), "raw_output": r, "output": o,
                    "gold": ex.gold, "scores": s, **{k: v[i] for k, v in extras.items()}})
    return out


def record(outcome: Outcome, results_dir: Path | str | None = None, git: dict | None = None) -> dict[str, Any]:
    """Write the run folder ``<results>/runs/<run_id>/`` and append the row to ``<results>/runs.jsonl``."""
    cfg, spec = outcome.cfg, outcome.spec
    results = Path(results_dir or cfg.run.results_dir)
    git = git or runs.git_state()
    run_id = runs.make_run_id(spec.name, outcome.display, outcome.config_hash)
    run_dir = results / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, run_dir / "config.yaml")
    evals, outputs = outcome.examples, outcome.prediction.outputs
    outcome.samples = samples_of(outcome)
    runs.write_jsonl(run_dir / "samples.jsonl", outcome.samples)
    runs.write_json(run_dir / "predictions.json",
                    {"task": spec.name, "golds": [{"id": ex.id, "output": o} for ex, o in zip(evals, outputs)]})
    if outcome.has_gold:  # the golds of exactly the evaluated ids: `python -m benchmark.scoring.score` re-scores as is
        runs.write_json(run_dir / "golds.json",
                        {"task": spec.name, "golds": [{"id": ex.id, "output": ex.gold} for ex in evals]})
    runs.write_diagnostics(run_dir, outcome.diagnostics)
    prompts = outcome.prediction.prompts_or([ex.input for ex in evals])
    runs.write_jsonl(run_dir / "prompts.jsonl", [{"id": ex.id, "prompt": p} for ex, p in zip(evals, prompts)])
    if outcome.log_dir is not None and any(outcome.log_dir.iterdir()):   # Lightning logs (benchmark.contract.trainlog)
        shutil.copytree(outcome.log_dir, run_dir / "logs", dirs_exist_ok=True)

    t = outcome.timings
    row = {
        "run_id": run_id, "status": "finished", "task": spec.name, "task_version": spec.version,
        "method": outcome.method, "variant": outcome.variant, "display": outcome.display,
        "group": "llm" if outcome.uses_backbone else "reference",
        "profile": str(cfg.profile), "answer_mode": _answer_mode(cfg, spec, outcome.uses_backbone),
        "choice_norm": _choice_norm(cfg, spec, outcome.uses_backbone),
        "data": data_block(outcome.data),
        "n": len(evals), "n_train": outcome.n_train, "n_users": len({ex.user_key for ex in evals}),
        "n_unparsable": outcome.n_unparsable, "metrics": outcome.metrics,
        "config_hash": outcome.config_hash, "config": to_container(cfg), "git": git,
        "packages": runs.package_versions(), "host": runs.host_info(),
        "backbone": outcome.loaded.get("backbone"), "embedder": outcome.loaded.get("embedder"),
        "seed": int(cfg.seed), "ranks": outcome.ranks,
        "timings": {"fit_s": round(t["fit_s"], 3), "predict_s": round(t["predict_s"], 3),
                    "score_s": round(t["score_s"], 3), "total_s": round(t["total_s"], 3),
                    "eval_s_per_1k": round(1000 * t["predict_s"] / max(len(evals), 1), 3)},
        "cost": outcome.cost, "cache": outcome.cache, "finished_at": runs.now_iso(),
        "samples": str((run_dir / "samples.jsonl").relative_to(results)),
    }
    runs.write_json(run_dir / "row.json", row)
    runs.append_row(results / "runs.jsonl", row)
    return row


def data_block(prov: dict[str, Any]) -> dict[str, Any]:
    """The row's data provenance: the flat fields a leaderboard groups by, plus the full record."""
    ev, sel = prov["sources"]["eval"], prov.get("selection", {})
    return {"source": ev["kind"], "root": ev["root"], "digest": prov["digest"],
            "train_source": prov["sources"]["train"]["kind"], "train_split": prov["splits"]["train"],
            "eval_split": prov["splits"]["eval"], "limit": prov["limits"]["limit"],
            "train_limit": prov["limits"]["train_limit"], "method_limit": prov["limits"].get("method_limit"),
            "n_available": sel.get("eval", {}).get("n_total"),
            "ids_sha256": sel.get("eval", {}).get("ids_sha256"), "provenance": prov}


def _answer_mode(cfg: DictConfig, spec: TaskSpec, uses_backbone: bool) -> str:
    if not uses_backbone:
        return "rule"
    return answer_mode(spec, {"answer_mode": str(cfg.decoding.answer_mode)})


def _choice_norm(cfg: DictConfig, spec, uses_backbone: bool) -> str | None:
    """The declared normalisation of choice scores, for rows whose answers were chosen by likelihood."""
    if _answer_mode(cfg, spec, uses_backbone) != "choice":
        return None
    return choice_norm({"choice_norm": cfg.decoding.choice_norm})
