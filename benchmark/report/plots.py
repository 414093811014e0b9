"""Leaderboard figures (PNG, matplotlib Agg): per-task quality with 95% CIs, and quality against per-user cost.

Rendered by ``benchmark/report/leaderboard.py`` from the same selected rows as the tables, never from a model:

* ``<slug>-tasks.png``: one subplot per task, a horizontal bar per method with the task's headline metric and
  its 95% bootstrap CI (the row's ``ci95``) as error bars; LLM-free reference baselines in grey.
* ``<slug>-cost.png``: one subplot per task, headline metric (y) against per-user cost (x, log scale) =
  stored bytes per user + trainable parameters (+1 so that a zero-cost method sits at 10^0). The Pareto front
  (no other method is both cheaper and better) is drawn as a step line with its members ringed. Adding bytes to
  a parameter count mixes units on purpose: it is a coarse "what does personalising one more user cost" axis
  (peft's `method_comparison` computes the same Pareto frontier).

Files are written atomically and without a timestamp or version in the PNG metadata, so the same rows give the
same bytes (the committed plots only change when results change).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

LLM_COLOR, REFERENCE_COLOR, FRONT_COLOR = "#3b6ea5", "#9a9a9a", "#c0392b"


@dataclass(frozen=True)
class Point:
    """One method on one task."""

    label: str
    group: str  # "llm" | "reference"
    value: float
    lo: float | None = None
    hi: float | None = None
    cost: float | None = None  # stored bytes per user + trainable parameters; None = not reported


@dataclass(frozen=True)
class Panel:
    """One task: its headline metric and the methods measured on it (in table order)."""

    task: str
    metric: str
    higher_is_better: bool
    points: tuple[Point, ...]


def pareto_front(points: Sequence[Point], higher_is_better: bool) -> list[Point]:
    """Points not dominated by a cheaper-or-equal and strictly better one, ordered by cost.

    Points without a cost are left out. Among equal-cost points only the best can be on the front.
    """
    sign = 1.0 if higher_is_better else -1.0
    costed = sorted((p for p in points if p.cost is not None), key=lambda p: (p.cost, -sign * p.value, p.label))
    front: list[Point] = []
    for p in costed:
        if not front or sign * p.value > sign * front[-1].value:
            front.append(p)
    return front


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(1, n))
    return math.ceil(n / cols), cols


def figure_grid(n_panels: int, width_per: float, height_per: float):
    """A figure with ``n_panels`` axes in rows of at most 3 (spare cells hidden): the suite's one plot layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = _grid(n_panels)
    fig, axes = plt.subplots(rows, cols, figsize=(width_per * cols, height_per * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG without a timestamp in its metadata (same figure, same bytes), atomically."""
    import matplotlib.pyplot as plt

    from benchmark.cache.store import atomic_write_bytes

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def arrow(hib: bool) -> str:
    return "↑" if hib else "↓"


def task_bars(title: str, panels: Sequence[Panel], path: Path) -> Path:
    """Headline metric per method with 95% CI error bars, one subplot per task."""
    height = max(2.4, 0.42 * max(len(p.points) for p in panels) + 1.2)
    fig, axes = figure_grid(len(panels), 5.2, height)
    for ax, panel in zip(axes, panels):
        pts = list(reversed(panel.points))  # barh draws bottom-up; keep the table's top row on top
        y = range(len(pts))
        lo_err = [p.value - p.lo if p.lo is not None else 0.0 for p in pts]
        hi_err = [p.hi - p.value if p.hi is not None else 0.0 for p in pts]
        colors = [REFERENCE_COLOR if p.group == "reference" else LLM_COLOR for p in pts]
        ax.barh(list(y), [p.value for p in pts], xerr=[lo_err, hi_err], color=colors, capsize=3,
                error_kw={"elinewidth": 1})
        ax.set_yticks(list(y), [p.label for p in pts], fontsize=8)
        ax.set_xlabel(f"{panel.metric} {arrow(panel.higher_is_better)} (95% CI)", fontsize=9)
        ax.set_title(panel.task, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{title}\nblue: LLM methods, grey: LLM-free reference baselines", fontsize=10)
    return save_figure(fig, path)


def quality_vs_cost(title: str, panels: Sequence[Panel], path: Path) -> Path:
    """Headline metric against per-user cost (log x) with the Pareto front, one subplot per task."""
    fig, axes = figure_grid(len(panels), 5.2, 4.0)
    for ax, panel in zip(axes, panels):
        pts = [p for p in panel.points if p.cost is not None]
        for p in pts:
            ax.scatter(p.cost + 1, p.value, s=28, zorder=3,
                       color=REFERENCE_COLOR if p.group == "reference" else LLM_COLOR)
            ax.annotate(p.label, (p.cost + 1, p.value), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front = pareto_front(pts, panel.higher_is_better)
        if front:
            ax.step([p.cost + 1 for p in front], [p.value for p in front], where="post", color=FRONT_COLOR,
                    linewidth=1, zorder=2)
            ax.scatter([p.cost + 1 for p in front], [p.value for p in front], s=90, facecolors="none",
                       edgecolors=FRONT_COLOR, zorder=4)
        ax.set_xscale("log")
        ax.set_xlabel("stored bytes/user + trainable params + 1 (log)", fontsize=8)
        ax.set_ylabel(f"{panel.metric} {arrow(panel.higher_is_better)}", fontsize=9)
        ax.set_title(panel.task, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if not pts:
            ax.text(0.5, 0.5, "no cost reported", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{title}\nquality vs per-user cost; red ring/line: Pareto front", fontsize=10)
    return save_figure(fig, path)


def render_plots(slug: str, title: str, panels: Sequence[Panel], out_dir: Path) -> list[tuple[str, Path]]:
    """Both figures for one leaderboard section; returns (caption, path) pairs for the markdown links."""
    if not panels:
        return []
    return [("headline metric per task with 95% CIs", task_bars(title, panels, out_dir / f"{slug}-tasks.png")),
            ("quality vs per-user cost (Pareto view)", quality_vs_cost(title, panels, out_dir / f"{slug}-cost.png"))]
