"""Scaling with users (``make perf`` figure 4): wall time and peak memory of real runs as evaluated users grow.

Every (data source, method, users) point is a separate subprocess of the real runner::

    python -m benchmark.runs.runner --tasks T --methods M --data D --profile P data.limit=N run.results_dir=<scratch>

so its wall time and peak RSS are those of a real run, imports and model loading included. Each point gets a
fresh cache dir (``LAMP_BENCH_CACHE``; the ``models/`` folder of the real cache is symlinked into it, so the
one-time GGUF conversion is not redone): embeddings, rankings, plugs and adapters are computed cold every time.

Peak RSS: Linux's ``ru_maxrss`` of a child (``wait4``, ``RUSAGE_CHILDREN``, even the child's own
``RUSAGE_SELF``) starts from the *parent's* RSS at fork (the kernel carries the old address space's high-water
mark across exec), so a small run spawned by this process, which holds the backbone, would report this
process's ~1.2 GB. The runner is therefore started through a tiny wrapper (``python -m benchmark.perf.scaling
--report F -- <runner args>``) that calls ``benchmark.runs.runner.main`` and writes its own ``VmHWM`` (the peak RSS
of the exec'd image only) from ``/proc/self/status``. CPU seconds come from ``os.wait4``.

Users: on the mini pack every LaMP_1-5 user has one dev question, so ``data.limit=N`` evaluates N users
(a seeded sample). The config's ``synthetic`` source is fixed at 6 users (``benchmark.data.sources`` does not pass a
size to the generator), so the larger synthetic pack is written here with ``benchmark.data.synthetic.write_synthetic
(n_users=...)`` into the scratch dir and passed to the runner as a path (its rows say source ``path``).

Per-user marginal cost = slope of the least-squares line of wall time against users; its intercept is the fixed
cost (start-up, model loading, training that does not depend on the evaluated users).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmark.runs import provenance as runs

REPO = runs.REPO


@dataclass(frozen=True)
class Point:
    source: str          # mini | synthetic
    method: str
    users: int           # evaluated users (= dev questions: one per user on these packs)
    label: str           # how the size was asked for: "10", "all"

    @property
    def slug(self) -> str:
        return f"{self.source}-{self.method}-{self.users}"


def short(text: Any) -> str:
    """Paths inside the repository written relative to it (reports stay readable and machine-independent)."""
    return str(text).replace(str(REPO) + os.sep, "")


def parse_sizes(text: str, n_available: int) -> list[tuple[int, str]]:
    """``"10,100,all"`` -> [(10, "10"), (100, "100"), (126, "all")] for 126 available; sizes above what the
    data holds are clamped to it, duplicates dropped (the first label kept)."""
    out: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        n = n_available if part == "all" else min(int(part), n_available)
        if n < 1:
            raise ValueError(f"perf: user counts must be >= 1, got {part!r}")
        out.setdefault(n, part if part == "all" or int(part) <= n_available else f"{part}->{n} (all)")
    return sorted(out.items())


def parse_caps(text: str) -> dict[str, int]:
    """``"oppu=30,pplug=1000"`` -> {"oppu": 30, "pplug": 1000}."""
    caps = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        caps[name.strip()] = int(value)
    return caps


def plan(methods: Sequence[str], sizes: dict[str, list[tuple[int, str]]], caps: dict[str, int]
         ) -> tuple[list[Point], list[dict[str, Any]]]:
    """Points to run and points not run (with the reason). Sizes above a method's cap are replaced by one point
    at the cap (so a capped method still has two sizes for its slope)."""
    points, skipped = [], []
    for source, wanted in sizes.items():
        for method in methods:
            cap = caps.get(method)
            kept = [(n, lab) for n, lab in wanted if cap is None or n <= cap]
            over = [(n, lab) for n, lab in wanted if cap is not None and n > cap]
            if over and (not kept or kept[-1][0] < cap):
                kept.append((cap, f"{cap} (cap)"))
            for n, lab in over:
                skipped.append({"source": source, "method": method, "users": n, "label": lab,
                                "reason": f"above --max-users {method}={cap} (cost: see its per-user slope)"})
            points += [Point(source, method, n, lab) for n, lab in kept]
    return points, skipped


def synthetic_pack(scratch: Path, n_users: int, tasks: Sequence[str] | None = None, seed: int = 0) -> Path:
    """A planted-preference pack (``tasks``; None = all) with ``n_users`` users, one dev question each; written
    once under ``scratch`` (the generator is deterministic)."""
    from benchmark.data.synthetic import is_complete, write_synthetic

    root = scratch / f"synthetic-{'-'.join(tasks) if tasks else 'all'}-u{n_users}-seed{seed}"
    if not is_complete(root, seed, n_users):
        write_synthetic(root, seed=seed, n_users=n_users, tasks=list(tasks) if tasks else None)
    return root.resolve()


def real_models_dir() -> Path:
    from benchmark.models.loading import CACHE
    return CACHE / "models"


def pinned_variant(method: str) -> list[str]:
    """A method with a declared sweep (bm25: k = 1, 4) would run once per value: pin the first one."""
    from benchmark.runs.config import method_sweep
    return list(method_sweep(method)[0][1])


def run_point(point: Point, *, task: str, data: str, profile: str, overrides: Sequence[str], scratch: Path,
              timeout_s: float, log=print) -> dict[str, Any]:
    """One real run in a subprocess with a fresh cache; -> wall s, CPU s, peak RSS MB, the row's timings."""
    where = scratch / "points" / point.slug
    shutil.rmtree(where, ignore_errors=True)
    cache, results = where / "cache", where / "results"
    cache.mkdir(parents=True)
    if real_models_dir().is_dir():
        (cache / "models").symlink_to(real_models_dir(), target_is_directory=True)
    args = ["--tasks", task, "--methods", point.method, "--data", data, "--profile", profile,
            f"data.limit={point.users}", f"run.results_dir={results}", *pinned_variant(point.method), *overrides]
    report = where / "child.json"
    cmd = [sys.executable, "-m", "benchmark.perf.scaling", "--report", str(report), "--", *args]
    env = {**os.environ, "LAMP_BENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    log(f"[perf] scaling {point.slug}: benchmark.runs.runner {' '.join(args)}")
    with open(where / "log.txt", "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        timer = threading.Timer(timeout_s, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    row = next((r for r in runs.read_rows(results / "runs.jsonl") if r.get("status") == "finished"), None)
    child = json.loads(report.read_text()) if report.exists() else {}
    out_rec: dict[str, Any] = {
        **asdict(point), "rc": proc.returncode, "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "peak_rss_mb": round(child.get("peak_rss_kb", 0) / 1024, 1),
        "peak_rss_source": child.get("peak_rss_source", "none (the wrapper did not finish)"),
        "command": short("python -m benchmark.runs.runner " + " ".join(args)), "log": short(where / "log.txt")}
    if row is not None:
        out_rec.update(n=row["n"], n_users=row["n_users"], fit_s=row["timings"]["fit_s"],
                       predict_s=row["timings"]["predict_s"], run_total_s=row["timings"]["total_s"])
        out_rec["users"] = row["n_users"]       # what the run actually evaluated (one dev question per user here)
    if proc.returncode != 0 or row is None:
        why = "timed out" if wall >= timeout_s else f"exit code {proc.returncode}"
        out_rec["error"] = why if row is not None else f"{why}, no finished row"
        out_rec["log_tail"] = (where / "log.txt").read_text(errors="replace").strip().splitlines()[-5:]
    shutil.rmtree(cache, ignore_errors=True)   # the point's cold caches are not needed afterwards
    log(f"[perf]   -> {out_rec['wall_s']:.1f} s wall, {out_rec['cpu_s']:.1f} CPU-s, "
        f"{out_rec['peak_rss_mb']:.0f} MB peak{'  ERROR: ' + out_rec['error'] if 'error' in out_rec else ''}")
    return out_rec


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float] | None:
    """Least squares ``y = intercept + slope * x``; None with fewer than two distinct x."""
    if len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    return {"slope": slope, "intercept": intercept, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
            "points": n}


def fits(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (source, method): wall-time and peak-RSS lines over the successful points."""
    out = []
    for key in dict.fromkeys((r["source"], r["method"]) for r in results):
        ok = [r for r in results if (r["source"], r["method"]) == key and "error" not in r]
        xs = [r["users"] for r in ok]
        wall, rss = fit_line(xs, [r["wall_s"] for r in ok]), fit_line(xs, [r["peak_rss_mb"] for r in ok])
        out.append({"source": key[0], "method": key[1], "points": len(ok),
                    "s_per_user": None if wall is None else round(wall["slope"], 4),
                    "fixed_s": None if wall is None else round(wall["intercept"], 2),
                    "r2": None if wall is None else round(wall["r2"], 4),
                    "mb_per_user": None if rss is None else round(rss["slope"], 4)})
    return out


def plot(results: Sequence[dict[str, Any]], path: Path) -> Path:
    """Wall time and peak RSS against evaluated users (log-log): one line per method, solid = mini pack,
    dashed = synthetic."""
    from benchmark.report.plots import figure_grid, save_figure

    fig, (ax_t, ax_m) = figure_grid(2, 5.6, 4.2)
    methods = list(dict.fromkeys(r["method"] for r in results))
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for source, style, marker in (("mini", "-", "o"), ("synthetic", "--", "s")):
        for m in methods:
            pts = sorted((r["users"], r["wall_s"], r["peak_rss_mb"]) for r in results
                         if r["source"] == source and r["method"] == m and "error" not in r)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ax_t.plot(xs, [p[1] for p in pts], style, marker=marker, color=colors[m], label=f"{m} ({source})")
            ax_m.plot(xs, [p[2] for p in pts], style, marker=marker, color=colors[m], label=f"{m} ({source})")
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for ax, ylabel, ylog in ((ax_t, "wall time of the run (s)", True), (ax_m, "peak RSS (MB)", False)):
        for axis, log_scale in ((ax.xaxis, True), (ax.yaxis, ylog)):
            if log_scale:
                (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(ScalarFormatter())
                axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("evaluated users (log)")
        ax.set_ylabel(ylabel + (" (log)" if ylog else ""))
        ax.grid(True, which="major", alpha=0.3)
    ax_t.set_title("wall time vs users (one subprocess per point, cold caches)", fontsize=9)
    ax_m.set_title("peak memory vs users", fontsize=9)
    if results:
        ax_t.legend(fontsize=7)
    return save_figure(fig, path)


def resolve_plan(*, task: str, methods: Sequence[str], sizes: dict[str, str], caps: dict[str, int], scratch: Path,
                 mini_root: Path | None) -> dict[str, Any]:
    """Sizes -> points to run, points not run, the data root of each source (the synthetic pack is written)."""
    from benchmark.data.reader import read_split
    from benchmark.data.tasks import load_task

    spec = load_task(task)
    roots: dict[str, Path] = {}
    resolved: dict[str, list[tuple[int, str]]] = {}
    notes: list[str] = []
    for source, text in sizes.items():
        if source == "mini":
            if mini_root is None:
                notes.append("mini pack not found: its points were not run")
                continue
            roots["mini"] = mini_root
            resolved["mini"] = parse_sizes(text, len(read_split(mini_root, spec, "dev").examples))
        else:
            top = max([int(p) for p in text.split(",") if p.strip() and p.strip() != "all"] + [2])
            roots["synthetic"] = synthetic_pack(scratch, top, [task])
            resolved["synthetic"] = parse_sizes(text, top)
    points, skipped = plan(methods, resolved, caps)
    return {"points": points, "skipped": skipped, "roots": roots, "notes": notes}


def scaling_section(*, task: str, methods: Sequence[str], sizes: dict[str, str], caps: dict[str, int],
                    profile: str, overrides: Sequence[str], scratch: Path, mini_root: Path | None,
                    png: Path, timeout_s: float, log=print, progress=None) -> dict[str, Any]:
    """Plan, run every point in turn, fit, plot. ``sizes`` maps a source (mini | synthetic) to its size list;
    ``progress(section so far)`` is called after every point (the caller saves a partial report)."""
    pl = resolve_plan(task=task, methods=methods, sizes=sizes, caps=caps, scratch=scratch, mini_root=mini_root)
    points, skipped, roots, notes = pl["points"], pl["skipped"], pl["roots"], pl["notes"]
    log(f"[perf] scaling: {len(points)} points ({', '.join(p.slug for p in points)}); "
        f"{len(skipped)} not run (caps)")
    results: list[dict[str, Any]] = []

    def section() -> dict[str, Any]:
        plot(results, png)
        return {"task": task, "profile": profile, "methods": list(methods), "sizes": dict(sizes), "caps": caps,
                "roots": {k: short(v) for k, v in roots.items()}, "overrides": list(overrides), "points": list(results),
                "planned": len(points), "not_run": skipped, "failed": [r for r in results if "error" in r],
                "fits": fits(results), "plot": short(png), "notes": notes, "timeout_s": timeout_s}
    for p in points:
        results.append(run_point(p, task=task, data="mini" if p.source == "mini" else str(roots[p.source]),
                                 profile=profile, overrides=overrides, scratch=scratch, timeout_s=timeout_s,
                                 log=log))
        if progress is not None:
            progress(section())
    return section()


def fmt_num(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(sec: dict[str, Any], png_name: str) -> list[str]:
    """The scaling part of perf.md: fitted costs, every point, points not run."""
    done = f" ({len(sec['points'])} of {sec['planned']} points so far)" if len(sec["points"]) < sec["planned"] else ""
    out = [f"Task {sec['task']}, profile `{sec['profile']}`, one subprocess of `benchmark.runs.runner` per point with "
           f"a fresh cache dir (cold). Methods: {', '.join(sec['methods'])}{done}.", "",
           f"![wall time and peak memory vs users]({png_name})", "",
           "Each point: " + (f"`{sec['points'][0]['command']}` (scratch paths vary)" if sec["points"] else "none run")
           + "; peak RSS = the run process's own VmHWM. The per-user marginal cost is the slope of a "
           "least-squares line of wall time against users, the fixed cost its intercept.", "",
           "| source | method | points | per-user marginal cost (s/user) | fixed cost (s) | R² | MB per user |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for f in sec["fits"]:
        out.append(f"| {f['source']} | {f['method']} | {f['points']} | {fmt_num(f['s_per_user'], 3)} | "
                   f"{fmt_num(f['fixed_s'], 1)} | {fmt_num(f['r2'], 3)} | {fmt_num(f['mb_per_user'], 3)} |")
    out += ["", "| source | method | users (asked) | wall s | CPU s | peak RSS MB | fit s | predict s | status |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in sec["points"]:
        status = "ok" if "error" not in r else f"FAILED: {r['error']} (log {r['log']})"
        out.append(f"| {r['source']} | {r['method']} | {r['users']} ({r['label']}) | {r['wall_s']:.1f} | "
                   f"{r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | {fmt_num(r.get('fit_s'), 1)} | "
                   f"{fmt_num(r.get('predict_s'), 1)} | {status} |")
    if sec["not_run"] or sec["notes"]:
        out += ["", "Not run:"]
        out += [f"* {s['source']} {s['method']} at {s['users']} users: {s['reason']}" for s in sec["not_run"]]
        out += [f"* {n}" for n in sec["notes"]]
    return out


def peak_rss_kb() -> tuple[int, str]:
    """This process's own peak RSS: ``VmHWM`` (Linux), else ``ru_maxrss`` (which may include the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    import resource
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), "ru_maxrss (may include the parent's RSS)"


def child_main(argv: Sequence[str]) -> int:
    """``--report F -- <runner args>``: run the grid in this process, then write its own peak RSS to F."""
    if len(argv) < 3 or argv[0] != "--report" or argv[2] != "--":
        print("usage: python -m benchmark.perf.scaling --report FILE -- <benchmark.runs.runner args>", file=sys.stderr)
        return 2
    from benchmark.runs.runner import main as runner_main

    try:
        rc = runner_main(list(argv[3:]))
    finally:
        kb, source = peak_rss_kb()
        runs.write_json(Path(argv[1]), {"peak_rss_kb": kb, "peak_rss_source": source})
    return rc


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
