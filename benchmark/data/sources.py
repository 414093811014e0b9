"""Named data sources: where a run's LaMP files come from.

    mini       the LaMP-mini pack (real data, small): ``data.mini_root``, else ``$LAMP_MINI``
    official   the official LaMP files as ``make data`` lays them out: ``<data.official_root>/<data.split_kind>``
    synthetic  the planted-preference pack of :mod:`benchmark.data.synthetic`, generated on first use into
               ``<run.cache_dir>/synthetic/seed<seed>``
    <path>     any existing folder in the official layout
    auto       official if present, else mini if present, else synthetic (one line says which and why)

Relative paths are tried against the working directory, then the repository root, so ``configs/base.yaml``'s
``../shared/data/lamp_mini`` works from anywhere. The chosen source (name, kind, root) is written into every
run's provenance by :class:`~benchmark.data.datamodule.LampDataModule`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmark.data.reader import has_split
from benchmark.data.synthetic import is_complete, write_synthetic
from benchmark.data.tasks import TaskSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMED = ("auto", "mini", "official", "synthetic")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class DataSource:
    name: str          # what was asked for: auto | mini | official | synthetic | the path as given
    root: Path         # the LaMP root: <root>/<task folder>/<split>_questions.json
    kind: str          # mini | official | synthetic | path
    reason: str = ""   # why auto chose it (empty otherwise)


def _candidates(path: str | Path) -> list[Path]:
    p = Path(os.path.expanduser(str(path)))
    return [p] if p.is_absolute() else [Path.cwd() / p, REPO_ROOT / p]


def _existing_dir(*paths: str | Path | None) -> Path | None:
    for path in paths:
        if path in (None, ""):
            continue
        for c in _candidates(path):  # type: ignore[arg-type]
            if c.is_dir():
                return c.resolve()
    return None


def _has_lamp(root: Path | None, spec: TaskSpec | None) -> bool:
    """Does ``root`` hold LaMP files (for ``spec`` when given: any of its splits)?"""
    if root is None or not root.is_dir():
        return False
    if spec is not None:
        return any(has_split(root, spec, s) for s in SPLITS)
    return any(root.glob("*/*_questions.json")) or any(root.glob("*/*/*_questions.json"))


def _get(cfg_data: Any, key: str, default: Any = None) -> Any:
    try:
        value = cfg_data.get(key, default) if hasattr(cfg_data, "get") else getattr(cfg_data, key, default)
    except Exception:  # an unresolvable interpolation (e.g. a missing env var) counts as unset
        return default
    return default if value is None else value


def mini_root(cfg_data: Any) -> Path | None:
    return _existing_dir(_get(cfg_data, "mini_root"), os.environ.get("LAMP_MINI"))


def official_root(cfg_data: Any) -> Path:
    base = _existing_dir(_get(cfg_data, "official_root", "data/lamp"))
    kind = str(_get(cfg_data, "split_kind", "time"))
    return (base or REPO_ROOT / str(_get(cfg_data, "official_root", "data/lamp"))) / kind


def synthetic_root(cache_dir: Path | str | None, seed: int) -> Path:
    default = os.environ.get("LAMP_BENCH_CACHE") or Path.home() / ".cache" / "lamp-bench"
    root = Path(cache_dir or default).expanduser()
    root = root / "synthetic" / f"seed{seed}"
    if not is_complete(root, seed):
        write_synthetic(root, seed=seed)
    return root.resolve()


def resolve_source(name: str, cfg_data: Any, *, spec: TaskSpec | None = None,
                   cache_dir: Path | str | None = None, seed: int = 0,
                   log: Callable[[str], None] | None = None) -> DataSource:
    """Turn a source name (or path) into a :class:`DataSource`.

    ``spec`` makes presence checks task-specific (``auto`` skips an official root without this task, e.g.
    LaMP-6, which ``make data`` cannot download). ``cache_dir``/``seed`` place the synthetic pack.
    ``log`` receives auto's one-line choice (default: stdout)."""
    name = str(name)
    if name == "mini":
        root = mini_root(cfg_data)
        if not _has_lamp(root, spec):
            raise FileNotFoundError(f"data source 'mini': no LaMP-mini pack{_for(spec)} at data.mini_root="
                                    f"{_get(cfg_data, 'mini_root')!r} or $LAMP_MINI={os.environ.get('LAMP_MINI')!r}")
        assert root is not None
        return DataSource(name, root, "mini")
    if name == "official":
        root = official_root(cfg_data)
        if not _has_lamp(root, spec):
            raise FileNotFoundError(f"data source 'official': no LaMP files{_for(spec)} under {root}; run `make data` "
                                    f"(needs internet) or use data.source=mini / synthetic")
        return DataSource(name, root.resolve(), "official")
    if name == "synthetic":
        return DataSource(name, synthetic_root(cache_dir, seed), "synthetic")
    if name == "auto":
        source = _auto(cfg_data, spec, cache_dir, seed)
        (log or _stderr)(f"data: source auto -> {source.kind} at {source.root} ({source.reason})")
        return source
    root = _existing_dir(name)
    if root is None:
        tried = ", ".join(str(c) for c in _candidates(name))
        raise ValueError(f"data source {name!r} is not one of {', '.join(NAMED)} and is not an existing folder "
                         f"(tried {tried})")
    if not _has_lamp(root, spec):
        what = f"{spec.folder}/<split>_questions.json" if spec else "<task>/<split>_questions.json"
        raise FileNotFoundError(f"data source {name!r}: folder {root} has no {what} (official LaMP layout)")
    return DataSource(name, root, "path")


def _auto(cfg_data: Any, spec: TaskSpec | None, cache_dir: Path | str | None, seed: int) -> DataSource:
    task = f" with {spec.name}" if spec else ""
    official = official_root(cfg_data)
    if _has_lamp(official, spec):
        return DataSource("auto", official.resolve(), "official", f"official LaMP files{task} found")
    mini = mini_root(cfg_data)
    if _has_lamp(mini, spec):
        return DataSource("auto", mini, "mini", f"no official files{task} under {official}; LaMP-mini found")
    return DataSource("auto", synthetic_root(cache_dir, seed), "synthetic",
                      f"neither official files under {official} nor LaMP-mini{task} found")


def _for(spec: TaskSpec | None) -> str:
    return f" for {spec.name}" if spec else ""


def _stderr(line: str) -> None:
    print(line, flush=True)  # stdout, so the choice sits in the run log next to the rows it produced
