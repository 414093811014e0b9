"""The benchmark grid from one command: ``python -m benchmark.runs.runner --tasks all --methods all``.

* Order: tasks in LaMP order; within a task, methods by their ``grid_order`` (LLM-free references, then
  retrieval, which fills the embedding and ranking caches, then prompting, then trained methods), so shared
  caches are filled first. One process: the backbone and embedder load once and are shared.
* Resume: a run whose (task, method, variant, resolved-config hash, data digest, source tree) already has a
  finished row in results/runs.jsonl is skipped unless --force. The source tree key hashes the tracked files
  without results/ (``provenance.git_state``), so results committed between sittings keep finished rows valid.
* A failing (task, method) is recorded with its reason (status "failed", kept out of the leaderboard) and the
  grid goes on; the exit code is 1 if anything failed. A bad config or bad data (e.g. an empty eval split) fails
  before the run starts: the message names the key or file, and no row is written. Ctrl-C records the run in progress as "cancelled" and
  stops (exit 130); finished rows are never touched.
* Profile: ``cpu`` where no GPU is found, ``paper`` where one is, unless --profile/profile= says otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch
from omegaconf import OmegaConf

from benchmark.contract.registry import get_method, method_names
from benchmark.data.reader import LampFormatError
from benchmark.data.sources import resolve_source
from benchmark.data.tasks import spec_from_config, task_names
from benchmark.runs import provenance as runs
from benchmark.runs.config import ConfigError, compose, config_hash, method_sweep
from benchmark.runs.experiment import prepare_data, record, run
from benchmark.runs.progress import GridProgress


def default_profile() -> str:
    return "paper" if torch.cuda.is_available() else "cpu"


def expand_tasks(arg: str, overrides: list[str], profile: str) -> list[str]:
    if arg != "all":
        return [t.strip() for t in arg.split(",") if t.strip()]
    # "all" = every shipped task the chosen data source actually holds
    cfg = compose("LaMP_1", "zeroshot", overrides, profile=profile)
    root = resolve_source(str(cfg.data.source), cfg.data, cache_dir=cfg.run.cache_dir, seed=int(cfg.seed), log=print).root
    return [t for t in task_names() if (root / t).is_dir()]


def expand_methods(arg: str) -> list[str]:
    names = method_names() if arg == "all" else [m.strip() for m in arg.split(",") if m.strip()]
    for n in names:
        get_method(n)  # unknown names fail before anything runs, with suggestions
    return sorted(names, key=lambda n: (get_method(n).grid_order, n))


def run_grid(tasks: list[str], methods: list[str], overrides: list[str], *, profile: str, force: bool = False) -> int:
    git = runs.git_state()
    failures, done, skipped = [], 0, 0
    plan = [(t, m, label, extra) for t in tasks for m in methods for label, extra in variants(m, overrides)]
    print(f"[grid] profile={profile} tasks={','.join(tasks)} runs={len(plan)} commit={git['commit'][:10]} "
          f"source tree={git['source_tree'][:10]}{' (dirty)' if git['dirty'] else ''}", flush=True)
    data_cache: dict[str, object] = {}
    recorded, limit = _recorded(plan, overrides, profile)
    grid = GridProgress([(t, m, v) for t, m, v, _ in plan], recorded, profile, limit)
    log = grid.log
    for i, (task, method, variant, extra) in enumerate(plan, 1):
        tag = f"[{i}/{len(plan)}] {task} {method}{' ' + variant if variant else ''}"
        cfg = None
        grid.start(i - 1, tag)
        try:
            cfg = compose(task, method, [*overrides, *extra], profile=profile)
            reason = get_method(method).unsupported_reason(spec_from_config(cfg.task))
            if reason:
                log(f"{tag}: n/a: {reason}")
                continue
            results = Path(cfg.run.results_dir)
            dkey = _data_key(cfg)
            if dkey not in data_cache:
                data_cache[dkey] = prepare_data(cfg)
            dm = data_cache[dkey]
            key = (task, method, variant, config_hash(cfg), dm.provenance["digest"], runs.code_key(git))
            if not force and not cfg.run.force and key in runs.finished_keys(results / "runs.jsonl"):
                skipped += 1
                log(f"{tag}: finished row exists (same config, data, code) -> skipped; FORCE=1 reruns")
                continue
            t0 = time.perf_counter()
            row = record(run(cfg, dm, variant=variant), results, git)
            grid.record(row)
            done += 1
            log(f"{tag}: {_summary(row)} in {time.perf_counter() - t0:.1f}s -> {results / 'runs' / row['run_id']}")
        except KeyboardInterrupt:
            _record(cfg, task, method, variant, git, "cancelled", "interrupted by the user")
            grid.close()
            log(f"{tag}: cancelled; finished rows are intact")
            return 130
        except (ConfigError, LampFormatError) as e:  # bad config or data: the run never started, so no row
            failures.append((tag, str(e)))
            log(f"{tag}: FAILED ({'config' if isinstance(e, ConfigError) else 'data'}): {e}")
        except Exception as e:  # noqa: BLE001 - the grid goes on; the reason is recorded and printed
            failures.append((tag, f"{type(e).__name__}: {e}"))
            _record(cfg, task, method, variant, git, "failed", f"{type(e).__name__}: {e}",
                    traceback.format_exc(limit=8))
            log(f"{tag}: FAILED: {type(e).__name__}: {e}")
        finally:
            grid.finish()
    grid.close()
    print(f"[grid] {done} run, {skipped} skipped, {len(failures)} failed", flush=True)
    for tag, why in failures:
        print(f"  failed {tag}: {why}", flush=True)
    return 1 if failures else 0


def _recorded(plan, overrides: list[str], profile: str) -> tuple[list[dict], object]:
    """The rows already in the results dir and the question cap, for the grid's ETA (none if the config fails)."""
    try:
        cfg = compose(plan[0][0], plan[0][1], [*overrides, *plan[0][3]], profile=profile)
        path = Path(cfg.run.results_dir) / "runs.jsonl"
        return (list(runs.read_rows(path)) if path.exists() else []), cfg.data.limit
    except Exception:  # noqa: BLE001 - the ETA is a convenience; the run itself reports config errors
        return [], None


def variants(method: str, overrides: list[str]) -> list[tuple[str, list[str]]]:
    """The method's declared sweep, unless the command line pins a swept key (then that one value)."""
    sweep = method_sweep(method)
    swept = {e.split("=", 1)[0] for _, extra in sweep for e in extra}
    pinned = [o for o in overrides if o.split("=", 1)[0] in swept]
    if pinned:
        return [(",".join(o.removeprefix("method.") for o in pinned), [])]
    return sweep


def _data_key(cfg) -> str:
    return json.dumps([OmegaConf.to_container(cfg.data, resolve=True), str(cfg.task.name), int(cfg.seed)],
                      sort_keys=True)


def _summary(row: dict) -> str:
    parts = [f"{k}={v['value']:.4f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}]" for k, v in row["metrics"].items()]
    extra = f" unparsable={row['n_unparsable']}" if row.get("n_unparsable") else ""
    return f"n={row['n']} " + " ".join(parts) + extra


def _record(cfg, task, method, variant, git, status, reason, trace: str = "") -> None:
    """A failed or cancelled run leaves a row (kept out of the leaderboard) so the reason is on file."""
    try:
        results = Path(cfg.run.results_dir) if cfg is not None else Path("results")
        runs.append_row(results / "runs.jsonl", {
            "run_id": runs.make_run_id(task, f"{method}-{variant}-{status}", config_hash(cfg) if cfg is not None else "0" * 8),
            "status": status, "task": task, "method": method,
            "variant": variant, "reason": reason, "trace": trace, "git": git,
            "config_hash": config_hash(cfg) if cfg is not None else None, "finished_at": runs.now_iso()})
    except Exception as e:  # noqa: BLE001 - never mask the original failure
        print(f"[grid] could not record the {status} run: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="all", help="all | LaMP_1,LaMP_2,...")
    ap.add_argument("--methods", default="zeroshot", help="all | comma list of registered methods")
    ap.add_argument("--data", default=None, help="auto | mini | official | synthetic | <path> (sets data.source)")
    ap.add_argument("--profile", default=None, help="cpu | paper | test (default: cpu without a GPU, else paper)")
    ap.add_argument("--force", action="store_true", help="rerun even when a finished row exists")
    ap.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. data.limit=20 method.k=4)")
    a = ap.parse_args(argv)
    overrides = list(a.overrides) + ([f"data.source={a.data}"] if a.data else [])
    profile = a.profile or next((o.split("=", 1)[1] for o in overrides if o.startswith("profile=")), None) \
        or default_profile()
    overrides = [o for o in overrides if not o.startswith("profile=")]
    try:
        tasks, methods = expand_tasks(a.tasks, overrides, profile), expand_methods(a.methods)
    except (KeyError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_grid(tasks, methods, overrides, profile=profile, force=a.force)


if __name__ == "__main__":
    sys.exit(main())
