"""DDP parity for Persona-Plug prediction: 2 CPU processes (gloo; Lightning ``strategy="ddp"`` with the processes
created externally, as ``torchrun`` does) give exactly the predictions of 1 process. 5 questions on 2 ranks make
the padding sampler repeat one question; the gathered duplicates are removed by example id."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from test_personaplug import FAST, _examples

N_EVAL = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _method(overrides: list[str]):
    from benchmark.contract.registry import get_method
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context
    from benchmark.cache.store import Store

    cfg = compose("LaMP_2", "pplug", overrides, profile="test")
    return get_method("pplug")(Context(cfg, store=Store(cfg.run.cache_dir)))


def _rank(rank: int, world: int, port: int, overrides: list[str], state: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank), NODE_RANK="0",
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    method = _method([*overrides, "method.accelerator=cpu", f"method.devices={world}", "method.strategy=ddp"])
    method.load_checkpoint(torch.load(state))
    pred = method.predict(_examples(N_EVAL, tag="e"))
    Path(out, f"rank{rank}.json").write_text(json.dumps({"final": pred.outputs, "raw": pred.raw,
                                                         "local": [r[0] for r in method.module._local]}))


@pytest.mark.slow
def test_two_process_ddp_prediction_equals_one_process(tiny_causal_dir, tiny_overrides, tmp_path):
    overrides = tiny_overrides(tiny_causal_dir, *FAST, "method.max_steps=2", "method.predict_batch_size=2")
    single = _method(overrides)
    single.fit(_examples(6))
    ref = single.predict(_examples(N_EVAL, tag="e"))
    torch.save(single.module.plug.trainable_state(), tmp_path / "state.pt")

    mp.spawn(_rank, args=(2, _free_port(), overrides, str(tmp_path / "state.pt"), str(tmp_path)), nprocs=2, join=True)
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for g in got:                                                       # every rank holds the full, ordered set
        assert g["final"] == ref.outputs and g["raw"] == ref.raw
    shards = [g["local"] for g in got]
    assert len(shards[0]) == len(shards[1]) == 3                       # 5 questions padded to 2 x 3
    assert sorted(set(shards[0] + shards[1])) == sorted(f"e{i}" for i in range(N_EVAL))
    assert len(shards[0] + shards[1]) == N_EVAL + 1                     # exactly one padding duplicate
