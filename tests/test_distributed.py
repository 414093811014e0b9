"""One distributed prediction path for every method: 2 CPU processes (gloo; the environment a launcher such as
torchrun exports, processes created by the test) write byte-identical prediction files to 1 process.

Each world size runs with its own results and cache folders, so the 2-process run fits for itself (rank 0 first,
rank 1 from rank 0's store entries) and shares nothing with the reference. 5 questions on 2 ranks make the
padding sampler repeat one question (or one user): the repeat is dropped by owner on rank 0. Rank 0 alone records;
the per-user logs (OPPU's users, the summaries) hold both ranks' users.

* ``test`` profile: zeroshot, bm25 (k=1), summary, oppu, pplug on a tiny random causal LM.
* ``paper`` profile's code path: a tiny random T5 (seq2seq) stands in for FlanT5, a tiny BERT read with CLS
  pooling and the bge query instruction for bge-base; beam 4, generate mode. float32 (the profile's bfloat16 is
  overridden) so "equal" means equal, not "equal up to bf16 batch padding".
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

N_EVAL = 5
TEST_METHODS = [("zeroshot", []), ("bm25", ["method.k=1"]), ("summary", []), ("oppu", []),
                ("pplug", ["method.max_steps=2", "method.predict_batch_size=2"])]
PAPER_METHODS = [("zeroshot", []), ("bm25", ["method.k=1"]), ("oppu", ["method.task.max_pairs=8"]),
                 ("pplug", ["method.max_steps=2", "method.augment_copies=1", "method.predict_batch_size=2"])]
BGE_INSTRUCTION = "Represent this sentence for searching relevant passages:"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, profile: str, overrides: list[str], methods: list, out: str) -> None:
    """One process of a ``world``-process run of every method (the environment torchrun would export)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      NODE_RANK="0", WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
    if world == 1:                                                # a lone process: no launcher variables at all
        for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
            os.environ.pop(name)
    import torch
    torch.set_num_threads(1)
    from benchmark.runs.config import compose
    from benchmark.runs.experiment import record, run
    from benchmark.runs.ranks import current

    assert current().world == world and current().rank == rank
    dirs = {}
    for method, extra in methods:
        cfg = compose("LaMP_2", method, [*overrides, *extra], profile=profile)
        outcome = run(cfg)
        assert (outcome is not None) == (rank == 0)               # rank 0 alone scores and records
        if outcome is not None:
            row = record(outcome, git={"commit": "test", "dirty": False})
            dirs[method] = str(Path(cfg.run.results_dir) / "runs" / row["run_id"])
    if rank == 0:
        Path(out, f"dirs.{world}.json").write_text(json.dumps(dirs))


def _run(world: int, profile: str, overrides: list[str], methods: list, out: Path) -> dict[str, Path]:
    mp.spawn(_worker, args=(world, _free_port(), profile, overrides, methods, str(out)), nprocs=world, join=True)
    return {m: Path(d) for m, d in json.loads((out / f"dirs.{world}.json").read_text()).items()}


def _compare(one: dict[str, Path], two: dict[str, Path]) -> None:
    for method in one:
        a, b = one[method], two[method]
        assert (a / "predictions.json").read_bytes() == (b / "predictions.json").read_bytes(), method
        sa = [json.loads(x) for x in (a / "samples.jsonl").read_text().splitlines()]
        sb = [json.loads(x) for x in (b / "samples.jsonl").read_text().splitlines()]
        assert [(s["id"], s["raw_output"], s["prompt_sha256"]) for s in sa] == \
               [(s["id"], s["raw_output"], s["prompt_sha256"]) for s in sb], method
        assert len(sa) == N_EVAL
        row_a, row_b = (json.loads((d / "row.json").read_text()) for d in (a, b))
        assert (row_a["ranks"], row_b["ranks"]) == (1, 2) and row_a["metrics"] == row_b["metrics"]
        assert row_b["cost"]["by_rank"][0]["trainable_params"] == row_a["cost"]["trainable_params"]
        for name in ("oppu_users.jsonl", "summaries.jsonl"):              # per-user logs of both ranks
            if (a / name).exists():
                users_a = sorted(json.loads(x)["user"] for x in (a / name).read_text().splitlines())
                recs_b = [json.loads(x) for x in (b / name).read_text().splitlines()]
                assert {r["rank"] for r in recs_b} == {0, 1}
                assert sorted({r["user"] for r in recs_b}) == sorted(set(users_a))
        results = b.parent.parent
        rows = [json.loads(x) for x in (results / "runs.jsonl").read_text().splitlines()]
        assert sum(r["method"] == method for r in rows) == 1           # one row, from rank 0


def _overrides(tmp_path: Path, world: int, *extra: str) -> list[str]:
    return [f"run.cache_dir={tmp_path / f'cache{world}'}", f"run.results_dir={tmp_path / f'results{world}'}",
            "data.source=synthetic", f"data.limit={N_EVAL}", "data.train_limit=8", "backbone.threads=0", *extra]


@pytest.mark.slow
def test_two_processes_equal_one_process_test_profile(tiny_causal_dir, tiny_embedder_dir, tmp_path):
    models = [f"backbone.id={tiny_causal_dir}", f"embedder.id={tiny_embedder_dir}"]
    one = _run(1, "test", _overrides(tmp_path, 1, *models), TEST_METHODS, tmp_path)
    two = _run(2, "test", _overrides(tmp_path, 2, *models), TEST_METHODS, tmp_path)
    _compare(one, two)


@pytest.mark.slow
def test_two_processes_equal_one_process_paper_code_path(tiny_seq2seq_dir, tiny_embedder_dir, tmp_path):
    models = [f"backbone.id={tiny_seq2seq_dir}", "backbone.dtype=float32", "backbone.batch_size=2",
              f"embedder.id={tiny_embedder_dir}", "embedder.pooling=cls", f"embedder.query_instruction='{BGE_INSTRUCTION}'",
              "decoding.max_new_tokens=6", "run.bootstrap=50"]
    from benchmark.runs.config import compose
    cfg = compose("LaMP_2", "pplug", _overrides(tmp_path, 1, *models), profile="paper")
    assert (cfg.backbone.kind, cfg.decoding.num_beams, cfg.decoding.answer_mode) == ("seq2seq", 4, "generate")
    assert cfg.embedder.query_instruction == BGE_INSTRUCTION and cfg.embedder.pooling == "cls"
    one = _run(1, "paper", _overrides(tmp_path, 1, *models), PAPER_METHODS, tmp_path)
    two = _run(2, "paper", _overrides(tmp_path, 2, *models), PAPER_METHODS, tmp_path)
    _compare(one, two)


def test_shards_own_every_question_once():
    from benchmark.data.example import Example
    from benchmark.runs.ranks import Ranks

    exs = [Example(id=f"q{i}", user_id=f"u{i // 2}", input="x", profile=[], gold="y") for i in range(7)]
    for by in ("question", "user"):
        shares = [Ranks(world=3, rank=r).shard(exs, by) for r in range(3)]
        owners = shares[0][1]
        assert all(s[1] == owners for s in shares)
        for r, (mine, _) in enumerate(shares):
            assert {ex.id for ex in exs if owners[ex.id] == r} <= {ex.id for ex in mine}
        got = sorted(ex.id for mine, _ in shares for ex in mine)
        assert set(got) == {ex.id for ex in exs}
        assert len({len({ex.user_key if by == "user" else ex.id for ex in m}) for m, _ in shares}) == 1  # padded
        if by == "user":                                            # a user's questions never split
            for mine, _ in shares:
                users = {ex.user_key for ex in mine}
                assert {ex.id for ex in exs if ex.user_key in users} == {ex.id for ex in mine}
