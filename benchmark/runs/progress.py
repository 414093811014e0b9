"""One progress display for the grid: a bar of runs done / total with the run in progress and an ETA for the
whole grid, above the stage bars of the run (embed, rank, train, predict; ``Context.progress`` and the
language model's batch bars, all tqdm, ``leave=False`` so each stage's bar replaces the last).

The grid's ETA is not tqdm's rate extrapolation (runs differ by orders of magnitude): it is the sum of the
*recorded* cost (``timings.total_s``) of the most similar finished row for every run still to come, with the
current run's elapsed time taken off its own estimate. "Similar" is the first level that has rows:
(task, method, variant, profile, question cap) -> (task, method, profile) -> (method, profile) -> (method); a run
with none counts as the median of the estimated ones, and the display says how many runs that is.

Quiet when stdout or stderr is not a terminal (the stage bars: tqdm ``disable=None``): CI logs keep only the
runner's one line per run.
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Sequence

from tqdm.auto import tqdm


def similar_cost(rows: Sequence[dict[str, Any]], task: str, method: str, variant: str, profile: str,
                 limit: Any = None) -> float | None:
    """Median recorded ``total_s`` of the most similar finished rows, or None."""
    done = [r for r in rows if r.get("status") == "finished" and (r.get("timings") or {}).get("total_s") is not None]
    levels = (
        lambda r: (r["task"], r["method"], r.get("variant", ""), r.get("profile"), (r.get("data") or {}).get("limit"))
        == (task, method, variant, profile, limit),
        lambda r: (r["task"], r["method"], r.get("profile")) == (task, method, profile),
        lambda r: (r["method"], r.get("profile")) == (method, profile),
        lambda r: r["method"] == method,
    )
    for match in levels:
        costs = [float(r["timings"]["total_s"]) for r in done if match(r)]
        if costs:
            return statistics.median(costs)
    return None


def fmt_duration(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    h, m = divmod(s // 60, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s % 60:02d}s" if m else f"{s}s")


class GridProgress:
    """The grid's bar; ``log`` prints a line above it (or plainly when the display is off)."""

    def __init__(self, plan: Sequence[tuple[str, str, str]], rows: Sequence[dict[str, Any]], profile: str,
                 limit: Any = None, *, enabled: bool | None = None, file=None):
        self.plan, self.rows, self.profile, self.limit = list(plan), list(rows), profile, limit
        self.current, self.t0 = -1, time.perf_counter()
        self.estimates: list[float | None] = []
        self.unknown = 0
        self._estimate()
        self.file = file or sys.stderr
        self.bar = tqdm(total=len(plan), position=0, leave=True, file=self.file, dynamic_ncols=True,
                        disable=not (sys.stdout.isatty() and self.file.isatty()) if enabled is None else not enabled,
                        unit="run", bar_format="{n_fmt}/{total_fmt} runs |{bar:24}| {desc}")
        self.tag = ""

    def _estimate(self) -> None:
        """Estimates of the runs still to come (finished ones stay at 0)."""
        start = self.current + 1
        known = [similar_cost(self.rows, t, m, v, self.profile, self.limit) for t, m, v in self.plan[start:]]
        estimated = [c for c in known if c is not None]
        fill = statistics.median(estimated) if estimated else None
        self.unknown = sum(c is None for c in known)
        self.estimates = self.estimates[:start] + [c if c is not None else fill for c in known]

    def record(self, row: dict[str, Any]) -> None:
        """A row this grid just finished: later runs of the same kind are estimated from it too."""
        self.rows.append(row)
        self._estimate()

    @property
    def active(self) -> bool:
        return not self.bar.disable

    def remaining_s(self) -> float | None:
        """Recorded cost of the runs not finished yet, less the time the current run has already taken."""
        if None in self.estimates:
            return None
        rest = sum(self.estimates[max(self.current, 0):])
        if self.current >= 0:
            rest -= min(time.perf_counter() - self.t0, self.estimates[self.current])
        return rest

    def eta(self) -> str:
        left = self.remaining_s()
        if left is None:
            return "ETA: no recorded row to estimate from"
        note = f"; {self.unknown} unmatched run(s) at the median" if self.unknown else ""
        return f"grid ETA ~{fmt_duration(left)} (recorded cost of similar rows{note})"

    def start(self, index: int, tag: str) -> None:
        """Run ``index`` (0-based) begins."""
        self.current, self.t0, self.tag = index, time.perf_counter(), tag
        self.bar.set_description_str(f"{tag} · {self.eta()}")

    def finish(self) -> None:
        """The current run ended (ran, skipped, n/a or failed): nothing of its estimate is left."""
        if 0 <= self.current < len(self.estimates):
            self.estimates[self.current] = 0.0
        self.bar.set_description_str(f"{self.tag} · {self.eta()}", refresh=False)
        self.bar.update(1)

    def log(self, line: str) -> None:
        if self.active:
            tqdm.write(line, file=self.file)
        else:
            print(line, flush=True)

    def close(self) -> None:
        self.bar.close()

