"""The processes of a run under a launcher, and the one distributed path every method's prediction takes.

Launchers: ``torchrun`` (Lightning's TorchElastic environment), SLURM ``srun`` with one task per device (its SLURM
environment), or any process set exporting WORLD_SIZE / LOCAL_RANK / NODE_RANK / MASTER_ADDR / MASTER_PORT (its
plain environment, as the tests do). ``lightning.fabric.Fabric`` (strategy ``ddp``) joins the process group and
puts each process on its own device. Without a launcher there is one rank and nothing below changes a thing.

    fit      rank 0 first, alone: what it trains lands in the content-hash store (a Persona-Plug checkpoint,
             OPPU's stage-1 adapter); then the other ranks fit and load it from there (a method whose fit is not
             cached repeats the same seeded training). An error on rank 0 is raised on every rank.
    predict  the evaluated questions are split by a padding ``DistributedSampler`` (no shuffle) over units:
             questions, or users for per-user methods (``Method.shard_by = "user"``: OPPU trains each user's
             adapter on the rank that owns the user; summaries are written by the rank that owns the user).
             Each rank predicts its share on its own device; (id, output, raw, prompt, extras) go to rank 0, which
             puts them back in question order. The sampler pads the last shards with repeats of the first units;
             a repeated question keeps the answer of the rank that owns it (unit position p belongs to rank
             p mod world): the copies are never compared, so bf16 batch-padding differences cannot fail a run.
    record   rank 0 alone scores, writes the run folder and appends the row. Each rank's ``cost()`` and
             ``diagnostics()`` (e.g. summaries.jsonl, oppu_users.jsonl of the users it owns) are gathered too, so
             the run folder holds every rank's (benchmark/runs/experiment.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from benchmark.contract.prediction import Prediction
from benchmark.data.example import Example
from benchmark.models.devices import launcher_world


@dataclass
class Ranks:
    world: int = 1
    rank: int = 0
    fabric: Any = None
    device: torch.device | None = None      # this rank's device (None: a lone process picks from config)

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    # ------------------------------------------------------------------ collectives (no-ops on one rank)
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return self.fabric.broadcast(obj, src=0) if self.distributed else obj

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order); None on the other ranks."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist
        parts: list[Any] = [None] * self.world if self.is_zero else None
        dist.gather_object(obj, parts, dst=0)
        return parts

    def zero_first(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on rank 0, then on the other ranks (which find rank 0's store entries); errors reach all."""
        if not self.distributed:
            return fn()
        out, error = None, None
        if self.is_zero:
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = e
        failed = self.broadcast(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        if failed:
            raise RuntimeError(f"rank 0 failed: {failed}")
        if not self.is_zero:
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001 - shared with every rank below, so none waits in a gather
                error = e
        errors = self.gather(None if error is None else f"{type(error).__name__}: {error}")
        first = self.broadcast(next((f"rank {r} failed: {m}" for r, m in enumerate(errors or []) if m), None))
        if error is not None:
            raise error
        if first:
            raise RuntimeError(first)
        return out

    # ------------------------------------------------------------------ the prediction path
    def shard(self, examples: Sequence[Example], by: str = "question") -> tuple[list[Example], dict[str, int]]:
        """-> (this rank's examples in input order, owner rank of every example id). ``by``: question | user."""
        from torch.utils.data import DistributedSampler
        if by not in ("question", "user"):
            raise ValueError(f"benchmark/runs/ranks.py: shard_by must be question | user, got {by!r}")
        unit = (lambda ex: ex.id) if by == "question" else (lambda ex: ex.user_key)
        units: dict[str, int] = {}
        for ex in examples:
            units.setdefault(unit(ex), len(units))
        owner = {ex.id: units[unit(ex)] % self.world for ex in examples}
        if not self.distributed:
            return list(examples), owner
        sampler = DistributedSampler(range(len(units)), num_replicas=self.world, rank=self.rank, shuffle=False,
                                     drop_last=False)                      # pads with repeats of the first units
        mine = set(sampler)
        return [ex for ex in examples if units[unit(ex)] in mine], owner

    def predict(self, predict: Callable[[list[Example]], Prediction], examples: Sequence[Example],
                by: str = "question") -> Prediction | None:
        """``predict`` on this rank's share; on rank 0 the whole Prediction in input order, elsewhere None."""
        if not self.distributed:
            pred = predict(list(examples))
            if not isinstance(pred, Prediction):
                raise TypeError(f"predict returned {type(pred).__name__}, not a Prediction")
            return pred
        share, owner = self.shard(examples, by)
        try:
            pred = predict(share) if share else Prediction([])
            if not isinstance(pred, Prediction):
                raise TypeError(f"predict returned {type(pred).__name__}, not a Prediction")
            rows = _rows(share, pred)
            payload: Any = ("ok", rows)
        except Exception as e:  # noqa: BLE001 - every rank learns of the failure, then all raise
            payload = ("error", f"rank {self.rank}: {type(e).__name__}: {e}")
        parts = self.gather(payload)
        errors = self.broadcast([p[1] for p in parts if p[0] == "error"] if self.is_zero else None)
        if errors:
            raise RuntimeError("; ".join(errors))
        if not self.is_zero:
            return None
        kept: dict[str, dict[str, Any]] = {}
        for r, (_, rows) in enumerate(parts):
            for row in rows:
                if owner[row["id"]] == r:                     # the owning rank's answer; padded copies dropped
                    kept[row["id"]] = row
        missing = [ex.id for ex in examples if ex.id not in kept]
        if missing:
            raise RuntimeError(f"benchmark/runs/ranks.py: no rank answered example ids {missing[:5]}")
        ordered = [kept[ex.id] for ex in examples]
        names = sorted({k for row in ordered for k in row["extras"]})
        return Prediction([r["output"] for r in ordered], raw=[r["raw"] for r in ordered],
                          prompts=[r["prompt"] for r in ordered],
                          extras={k: [r["extras"].get(k) for r in ordered] for k in names})


def _rows(share: Sequence[Example], pred: Prediction) -> list[dict[str, Any]]:
    if len(pred.outputs) != len(share):
        raise RuntimeError(f"predict returned {len(pred.outputs)} outputs for {len(share)} examples")
    raw, prompts = pred.raw_or_outputs(), pred.prompts_or([ex.input for ex in share])
    return [{"id": ex.id, "output": o, "raw": r, "prompt": p,
             "extras": {k: v[i] for k, v in pred.extras.items()}}
            for i, (ex, o, r, p) in enumerate(zip(share, pred.outputs, raw, prompts))]


_CURRENT: Ranks | None = None


def current() -> Ranks:
    """This process's ranks; the first call under a launcher joins the process group (once per process)."""
    global _CURRENT
    if _CURRENT is None:
        found = launcher_world()
        if found is None:
            _CURRENT = Ranks()
        else:
            from lightning.fabric import Fabric
            world, local = found
            fabric = Fabric(accelerator="auto", devices=local, num_nodes=max(world // local, 1), strategy="ddp")
            fabric.launch()                        # processes exist already: this only joins the group
            _CURRENT = Ranks(world=fabric.world_size, rank=fabric.global_rank, fabric=fabric, device=fabric.device)
    return _CURRENT
