"""Configuration: OmegaConf YAML merged in one fixed order, validated, hashed.

    configs/base.yaml  <-  configs/tasks/<task>.yaml  <-  configs/methods/<method>.yaml
                       <-  configs/profiles/<profile>.yaml  <-  CLI ``key=value``

* The base file declares every general key; after it is loaded the config is in struct mode, so a key that
  base does not declare is an error (``data.limt=3`` fails, naming the key).
* A method file holds ``method:`` (defaults), optionally ``tasks: {<task>: {...}}`` (the method's own per-task
  data: prompts, templates, query rules, per-task settings; only the running task's entry is merged),
  ``sweep:`` (one run per value) and ``extends: <method>`` (start from that method's ``method:`` and ``tasks:``,
  for variants such as ``pplug_mean``).
* The ``method`` node is validated by the method's own schema dataclass (its ``Config``): instantiated once here,
  so a bad key, type or value fails before any model loads (``benchmark.contract.config``).
* A profile may carry ``method_overrides: {<method name>: {...}}``; only the running method's entry is merged.
* The resolved config is hashed (sha256 of its canonical JSON) and saved beside every run.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from benchmark.contract.config import instantiate
from benchmark.contract.registry import get_method
from benchmark.data.tasks import spec_from_config, task_names

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the file or key."""


def _load(path: Path) -> DictConfig:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml errors carry line numbers
        raise ConfigError(f"{path}: {e}") from e
    assert isinstance(cfg, DictConfig), f"{path}: top level must be a mapping"
    return cfg


def method_file(name: str) -> Path:
    return CONFIG_DIR / "methods" / f"{name}.yaml"


def profile_file(name: str) -> Path:
    return CONFIG_DIR / "profiles" / f"{name}.yaml"


def _merge_strict(base: DictConfig, other: DictConfig, where: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)  # type: ignore[return-value]
    except (ConfigKeyError, ConfigAttributeError) as e:
        raise ConfigError(f"{where}: unknown key {e.full_key!r} (not declared in configs/base.yaml "
                          f"or the method's schema)") from None
    except Exception as e:
        raise ConfigError(f"{where}: {e}") from None


def compose(task: str, method: str, overrides: Iterable[str] = (), profile: str | None = None) -> DictConfig:
    """Build the resolved config for one (task, method) run. ``profile`` None = the one in overrides/base."""
    overrides = list(overrides)
    cli = OmegaConf.from_dotlist(overrides) if overrides else OmegaConf.create({})
    cfg = _load(CONFIG_DIR / "base.yaml")
    OmegaConf.set_struct(cfg, True)
    task_cfg = _load(CONFIG_DIR / "tasks" / f"{task}.yaml")
    spec_from_config(task_cfg.task)  # validate now: a broken task file fails before any model loads
    with _open_struct(cfg):
        cfg.task = task_cfg.task

    method_cls = get_method(method)
    mfile = method_file(method)
    defaults, per_task = method_nodes(method)
    mnode = _merge_strict(OmegaConf.structured(method_cls.Config), defaults, str(mfile))
    if task in per_task:
        mnode = _merge_strict(mnode, per_task[task], f"{mfile} tasks.{task}")
    with _open_struct(cfg):
        cfg.method = mnode
    cfg.method.name = method

    prof = profile or cli.get("profile", None) or cfg.profile
    pnode = _load(profile_file(prof))
    per_method = pnode.pop("method_overrides", {}) or {}
    cfg = _merge_strict(cfg, pnode, str(profile_file(prof)))
    if method in per_method:
        cfg.method = _merge_strict(cfg.method, per_method[method], f"{profile_file(prof)} method_overrides.{method}")
    cfg.profile = prof
    cfg = _merge_strict(cfg, cli, "command line")
    OmegaConf.set_struct(cfg, True)
    spec_from_config(cfg.task)  # CLI may have touched task keys
    try:                        # the method's typed config, validated now (the method instantiates its own)
        instantiate(method_cls.Config, cfg.method, str(mfile))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return cfg


def method_nodes(method: str, _seen: tuple[str, ...] = ()) -> tuple[DictConfig, dict[str, DictConfig]]:
    """(``method:`` defaults, ``tasks:`` entries) of a method file, after its ``extends:`` chain."""
    mfile = method_file(method)
    node = _load(mfile) if mfile.exists() else OmegaConf.create({"method": {}})
    extra = set(node) - {"method", "tasks", "sweep", "extends"}
    if extra:
        raise ConfigError(f"{mfile}: top-level keys are method, tasks, sweep and extends; got {sorted(extra)}")
    tasks = node.get("tasks", None) or {}
    unknown = sorted(set(tasks) - set(task_names()))
    if unknown:
        raise ConfigError(f"{mfile}: tasks.{unknown[0]} is not a shipped task ({', '.join(task_names())})")
    parent = node.get("extends", None)
    if not parent:
        return node.get("method", None) or OmegaConf.create({}), dict(tasks)
    if parent in _seen or parent == method:
        raise ConfigError(f"{mfile}: extends {parent!r} makes a cycle")
    base, base_tasks = method_nodes(str(parent), (*_seen, method))
    merged_tasks = {t: OmegaConf.merge(base_tasks.get(t, {}), tasks.get(t, {})) for t in {*base_tasks, *tasks}}
    return OmegaConf.merge(base, node.get("method", None) or {}), merged_tasks


class _open_struct:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def __enter__(self):
        OmegaConf.set_struct(self.cfg, False)

    def __exit__(self, *exc):
        OmegaConf.set_struct(self.cfg, True)


def method_sweep(method: str) -> list[tuple[str, list[str]]]:
    """Variants declared by ``sweep: {key: [values]}`` in a method file -> [(label, overrides)], one run each.
    No sweep -> one variant with an empty label."""
    import itertools

    mfile = method_file(method)
    sweep = _load(mfile).get("sweep", None) if mfile.exists() else None
    if not sweep:
        return [("", [])]
    keys = sorted(sweep)
    out = []
    for values in itertools.product(*(list(sweep[k]) for k in keys)):
        label = ",".join(f"{k}={v}" for k, v in zip(keys, values))
        out.append((label, [f"method.{k}={v}" for k, v in zip(keys, values)]))
    return out


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def config_hash(cfg: DictConfig | dict) -> str:
    """sha256 of the resolved config's canonical JSON, without keys that cannot change a number."""
    data = to_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    data = json.loads(json.dumps(data, sort_keys=True, default=str))
    run = dict(data.get("run", {}))
    for k in ("results_dir", "cache_dir", "force"):
        run.pop(k, None)
    data["run"] = run
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def save_resolved(cfg: DictConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
