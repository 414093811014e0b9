"""The grid split over processes: ``--shard i/n`` (and SLURM job arrays) gives deterministic, disjoint shares that
cover the plan, keep cache-sharing runs together, and, run concurrently into one results/runs.jsonl, write the
rows of one unsharded grid: no duplicate, no lost row."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.runs import provenance as runs
from benchmark.runs.runner import expand_methods, parse_shard, shard_plan, variants

REPO = Path(__file__).resolve().parent.parent
METHODS = "global_majority,zeroshot,bm25,summary_only"


def _plan(tasks: list[str], methods: str) -> list[tuple]:
    return [(t, m, label, extra) for t in tasks for m in expand_methods(methods) for label, extra in variants(m, [])]


def test_parse_shard_from_flag_and_slurm_array():
    assert parse_shard("1/4", {}) == (1, 4)
    assert parse_shard(None, {}) == (0, 1)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "5"}) == (2, 4)
    assert parse_shard("0/4", {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == (0, 4)   # flag wins
    for bad in ("4/4", "-1/2", "1/0", "a/b", "3"):
        with pytest.raises(ValueError):
            parse_shard(bad, {})


@pytest.mark.parametrize("count", [1, 2, 3, 7, 50])
def test_shards_partition_the_plan_and_keep_cache_families_together(count):
    plan = _plan(["LaMP_1", "LaMP_2", "LaMP_3"], "all")
    shares = [shard_plan(plan, i, count) for i in range(count)]
    assert sorted(map(repr, sum(shares, []))) == sorted(map(repr, plan))      # every run exactly once
    assert shares == [shard_plan(plan, i, count) for i in range(count)]       # deterministic
    for share in shares:
        assert share == [p for p in plan if p in share]                       # plan (grid) order kept
    where = {(p[0], p[1], p[2]): i for i, share in enumerate(shares) for p in share}
    for task in ("LaMP_1", "LaMP_2", "LaMP_3"):                               # BM25 rankings and summaries
        together = {where[k] for k in where if k[0] == task and k[1] in ("bm25", "summary", "summary_only",
                                                                         "pplug_rag", "oppu_rag")}
        assert len(together) == 1
    if count <= 3:                                                            # fewer shards than units: all work
        assert all(shares)


def _key(row: dict) -> tuple:
    return (row["task"], row["method"], row["variant"], row["config_hash"], row["status"],
            json.dumps(row.get("metrics"), sort_keys=True))


@pytest.mark.slow
def test_two_concurrent_shards_write_the_rows_of_one_grid(tiny_causal_dir, tiny_embedder_dir, tmp_path):
    def args(results: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "benchmark.runs.runner", "--tasks", "LaMP_2,LaMP_3", "--methods", METHODS,
                "--profile", "test", *extra, f"backbone.id={tiny_causal_dir}", f"embedder.id={tiny_embedder_dir}",
                f"run.cache_dir={results / 'cache'}", f"run.results_dir={results}", "data.source=synthetic"]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("SLURM_ARRAY_TASK_ID", None)
    whole = subprocess.run(args(tmp_path / "whole"), cwd=REPO, env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    shards = [subprocess.Popen(args(tmp_path / "sharded", "--shard", f"{i}/2"), cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in shards]
    assert [p.returncode for p in shards] == [0, 0], "\n".join(logs)
    assert all("shard=" in log for log in logs)

    expected = sorted(_key(r) for r in runs.read_rows(tmp_path / "whole" / "runs.jsonl"))
    got = [_key(r) for r in runs.read_rows(tmp_path / "sharded" / "runs.jsonl")]
    assert len(expected) == 10 and all(k[4] == "finished" for k in expected)
    assert sorted(got) == expected                          # the same rows: none lost, none twice
    assert len(set(got)) == len(got)
    ran = [log.count("] LaMP_") for log in logs]
    assert all(n > 0 for n in ran)                          # both shards did work
