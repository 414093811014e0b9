"""Where this process computes: the processes a launcher started, and a Trainer kept on this process's device.

A launcher (``torchrun``, SLURM ``srun``, or anything exporting WORLD_SIZE/LOCAL_RANK) starts one process per
device; Lightning's cluster environments read what it exported. The run joins the processes and splits the work
(benchmark/runs/ranks.py); a method that trains with Lightning inside one process keeps its Trainer on that
process's own device with :func:`local_strategy`, so it neither spawns processes nor lands on ``cuda:0``.
"""
from __future__ import annotations

import os

import torch


def launcher_world(env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """(world size, processes per node) that a launcher exported, or None when this is a lone process."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
    env = os.environ if env is None else env
    if env is os.environ and TorchElasticEnvironment.detect():                      # torchrun
        world = int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_WORLD_SIZE", world))
    elif env is os.environ and SLURMEnvironment.detect() and int(env.get("SLURM_NTASKS", 1)) > 1:   # srun
        world = int(env["SLURM_NTASKS"])
        local = int(env.get("SLURM_NTASKS_PER_NODE", "").split("(")[0] or world // int(env.get("SLURM_NNODES", 1)))
    elif "LOCAL_RANK" in env and "WORLD_SIZE" in env:                                # externally created
        world = int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_WORLD_SIZE", world))
    else:
        return None
    return (world, local) if world > 1 else None


def launched() -> bool:
    """True when a launcher started several processes for this run."""
    return launcher_world() is not None


def rank_device(device: torch.device) -> torch.device:
    """``device`` with an explicit index (``cuda`` -> this process's current CUDA device)."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def local_strategy(device: torch.device):
    """A Lightning strategy that keeps a Trainer on this one device, whatever the launcher exported."""
    from lightning.pytorch.strategies import SingleDeviceStrategy
    return SingleDeviceStrategy(device=rank_device(device))
