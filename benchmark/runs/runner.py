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
* Shards: ``--shard i/n`` (or, in a SLURM job array, ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``) runs a
  deterministic share of the plan (:func:`shard_plan`): n processes or array tasks together run every run once.
  Runs of one task whose methods share a store cache (``Method.caches``: BM25 rankings, embeddings, summaries)
  stay in one shard, in grid order, so no cache entry is computed by two shards. All shards may append to the
  same results/runs.jsonl (appends are locked).
* Devices: under a launcher (torchrun, srun) each run's questions are split over the ranks
  (benchmark/runs/ranks.py); rank 0 alone prints, writes run folders and appends rows.
"""
from __future__ import annotations

import argparse
import json
import os
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
from benchmark.runs.ranks import current as current_ranks


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


def parse_shard(arg: str | None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n); without it, a SLURM job array's task (its id relative to the lowest id of
    the array) and count; else (0, 1)."""
    env = os.environ if env is None else env
    if arg:
        try:
            i, n = (int(x) for x in arg.split("/"))
        except ValueError:
            raise ValueError(f"--shard must be i/n with integers, e.g. 0/4; got {arg!r}") from None
    elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        i = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        n = int(env["SLURM_ARRAY_TASK_COUNT"])
    else:
        return 0, 1
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n (i counts from 0)")
    return i, n


def shard_plan(plan: list[tuple], index: int, count: int) -> list[tuple]:
    """Shard ``index`` of ``count`` of a grid plan of (task, method, variant, overrides), in plan order.

    Units: the runs of one task whose methods share a cache name are one unit (transitively); every other run is
    a unit of its own. Units go, largest first (ties: earlier in the plan), to the shard with the fewest runs so
    far (ties: the lowest index): the same plan and count give every process the same split."""
    if count == 1:
        return list(plan)
    unit_of: list[int] = list(range(len(plan)))

    def root(i: int) -> int:
        while unit_of[i] != i:
            i = unit_of[i]
        return i
    first: dict[tuple[str, str], int] = {}
    for i, (task, method, *_rest) in enumerate(plan):
        for name in getattr(get_method(method), "caches", ()):
            j = first.setdefault((task, name), i)
            unit_of[root(i)] = root(j)
    units: dict[int, list[int]] = {}
    for i in range(len(plan)):
        units.setdefault(root(i), []).append(i)
    load, mine = [0] * count, []
    for members in sorted(units.values(), key=lambda m: (-len(m), m[0])):
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += len(members)
        if target == index:
            mine += members
    return [plan[i] for i in sorted(mine)]


def run_grid(tasks: list[str], methods: list[str], overrides: list[str], *, profile: str, force: bool = False,
             shard: tuple[int, int] = (0, 1)) -> int:
    ranks = current_ranks()                   # under a launcher every rank walks the same plan; rank 0 speaks
    say = print if ranks.is_zero else (lambda *a, **k: None)
    git = ranks.broadcast(runs.git_state())
    failures, done, skipped = [], 0, 0
    plan = [(t, m, label, extra) for t in tasks for m in methods for label, extra in variants(m, overrides)]
    n_all, plan = len(plan), shard_plan(plan, *shard)
    share = f" shard={shard[0]}/{shard[1]} ({len(plan)} of {n_all})" if shard[1] > 1 else ""
    say(f"[grid] profile={profile} tasks={','.join(tasks)} runs={len(plan)}{share} commit={git['commit'][:10]} "
        f"source tree={git['source_tree'][:10]}{' (dirty)' if git['dirty'] else ''}", flush=True)
    data_cache: dict[str, object] = {}
    recorded, limit = _recorded(plan, overrides, profile)
    grid = GridProgress([(t, m, v) for t, m, v, _ in plan], recorded, profile, limit,
                        enabled=None if ranks.is_zero else False)
    log = grid.log if ranks.is_zero else (lambda line: None)
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
            done_before = key in runs.finished_keys(results / "runs.jsonl") if ranks.is_zero else None
            if not force and not cfg.run.force and ranks.broadcast(done_before):
                skipped += 1
                log(f"{tag}: finished row exists (same config, data, code) -> skipped; FORCE=1 reruns")
                continue
            t0 = time.perf_counter()
            outcome = run(cfg, dm, variant=variant)           # None on ranks other than 0
            done += 1
            if outcome is not None:
                row = record(outcome, results, git)
                grid.record(row)
                log(f"{tag}: {_summary(row)} in {time.perf_counter() - t0:.1f}s -> {results / 'runs' / row['run_id']}")
        except KeyboardInterrupt:
            if ranks.is_zero:
                _record(cfg, task, method, variant, git, "cancelled", "interrupted by the user")
            grid.close()
            log(f"{tag}: cancelled; finished rows are intact")
            return 130
        except (ConfigError, LampFormatError) as e:  # bad config or data: the run never started, so no row
            failures.append((tag, str(e)))
            log(f"{tag}: FAILED ({'config' if isinstance(e, ConfigError) else 'data'}): {e}")
        except Exception as e:  # noqa: BLE001 - the grid goes on; the reason is recorded and printed
            failures.append((tag, f"{type(e).__name__}: {e}"))
            if ranks.is_zero:
                _record(cfg, task, method, variant, git, "failed", f"{type(e).__name__}: {e}",
                        traceback.format_exc(limit=8))
            log(f"{tag}: FAILED: {type(e).__name__}: {e}")
        finally:
            grid.finish()
    grid.close()
    say(f"[grid] {done} run, {skipped} skipped, {len(failures)} failed", flush=True)
    for tag, why in failures:
        say(f"  failed {tag}: {why}", flush=True)
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
    ap.add_argument("--shard", default=None, help="i/n: run the i-th of n deterministic shares of the grid "
                    "(default: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT in a job array, else everything)")
    ap.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. data.limit=20 method.k=4)")
    a = ap.parse_args(argv)
    overrides = list(a.overrides) + ([f"data.source={a.data}"] if a.data else [])
    profile = a.profile or next((o.split("=", 1)[1] for o in overrides if o.startswith("profile=")), None) \
        or default_profile()
    overrides = [o for o in overrides if not o.startswith("profile=")]
    try:
        shard = parse_shard(a.shard)
        tasks, methods = expand_tasks(a.tasks, overrides, profile), expand_methods(a.methods)
    except (KeyError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_grid(tasks, methods, overrides, profile=profile, force=a.force, shard=shard)


if __name__ == "__main__":
    sys.exit(main())
