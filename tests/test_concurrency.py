"""Several processes writing the same results and the same cache: whole rows and whole entries, never a mix.

* results/runs.jsonl: two processes append large rows at once; every row is read back whole, each exactly once;
  an append waits while another process holds the lock (so the test fails if the lock is missing).
* the content-hash store: two processes save the same key (file entries and folder entries) over and over while
  the test reads it; every read is a whole copy and no temp file or folder is left behind.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import torch

from benchmark.cache.store import Store
from benchmark.runs import provenance as runs

N_ROWS = 150
PAYLOAD = 40_000          # characters per row: far above a pipe buffer or a page


def _append_rows(path: str, writer: int) -> None:
    for i in range(N_ROWS):
        runs.append_row(Path(path), {"writer": writer, "i": i, "pad": chr(97 + writer) * PAYLOAD})


def _append_one(path: str) -> None:
    runs.append_row(Path(path), {"writer": "late"})


def _save_key(root: str, rounds: int) -> None:
    store = Store(root)
    value = {"x": torch.arange(200_000, dtype=torch.float32)}                       # 800 kB
    for _ in range(rounds):
        store.save("emb", "k" * 64, value, meta={"what": "same content, same key"})


def _save_folder(root: str, rounds: int) -> None:
    store = Store(root)

    def write(folder: Path) -> int:
        (folder / "weights.bin").write_bytes(b"w" * 300_000)
        time.sleep(0.01)                                   # widen the window between the two files
        (folder / "meta.json").write_text(json.dumps({"n": 300_000}))
        return 300_000

    for _ in range(rounds):
        assert store.save_dir("adapters", "a" * 64, write) == 300_000


def _run(target, *args_per_process) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for args in args_per_process]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"{target.__name__} exited with {p.exitcode}"


def test_two_writers_append_whole_rows(tmp_path):
    path = tmp_path / "runs.jsonl"
    _run(_append_rows, (str(path), 0), (str(path), 1))
    lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines]                    # a torn or interleaved row fails to parse
    assert len(rows) == 2 * N_ROWS
    assert sorted((r["writer"], r["i"]) for r in rows) == [(w, i) for w in (0, 1) for i in range(N_ROWS)]
    assert all(r["pad"] == chr(97 + r["writer"]) * PAYLOAD for r in rows)
    for w in (0, 1):                                               # each writer's rows keep their own order
        assert [r["i"] for r in rows if r["writer"] == w] == list(range(N_ROWS))


def test_append_waits_for_the_lock(tmp_path):
    path = tmp_path / "runs.jsonl"
    ctx = mp.get_context("spawn")
    with runs.locked(path):
        p = ctx.Process(target=_append_one, args=(str(path),))
        p.start()
        time.sleep(3.0)                                            # the writer has started and is waiting
        assert path.read_text() == "", "a row was appended while another process held the lock"
        assert p.is_alive()
    p.join(60)
    assert p.exitcode == 0
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"writer": "late"}]


def test_two_writers_of_one_store_key(tmp_path):
    root = tmp_path / "cache"
    _save_key(str(root), 1)                                        # an entry exists before the race starts
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_key, args=(str(root), 25)) for _ in range(2)]
    for p in procs:
        p.start()
    store, want, reads = Store(root), torch.arange(200_000, dtype=torch.float32), 0
    while any(p.is_alive() for p in procs):                       # read while both rewrite the key
        assert torch.equal(store.load("emb", "k" * 64)["x"], want)
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert reads > 0
    folder = store.path("emb", "k" * 64).parent
    assert sorted(x.name for x in folder.iterdir()) == ["k" * 64 + ".json", "k" * 64 + ".pt"]


def test_two_writers_of_one_store_folder(tmp_path):
    root = tmp_path / "cache"
    _run(_save_folder, (str(root), 10), (str(root), 10))
    store = Store(root)
    entry = store.dir("adapters", "a" * 64)
    assert sorted(x.name for x in entry.iterdir()) == ["meta.json", "weights.bin"]
    assert (entry / "weights.bin").read_bytes() == b"w" * 300_000
    assert json.loads((entry / "meta.json").read_text()) == {"n": 300_000}
    assert [x.name for x in entry.parent.iterdir()] == ["a" * 64]          # no temp folder left behind
