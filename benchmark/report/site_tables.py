"""The results site's tables as cells (shown text + sort key + link), built from ``benchmark.report.leaderboard``.

The leaderboard's own ``Table`` objects, formatters and ranks are reused, so a site table shows exactly what the
markdown table shows; the cells only add what the browser needs: a numeric sort key and a link to the run page.
"""
from __future__ import annotations

from typing import Any, Sequence

from benchmark.report import leaderboard as lb
from benchmark.report.plots import arrow


def cell(text: Any, sort: Any = None, *, href: str = "", bold: bool = False, title: str = "", cls: str = "") -> dict:
    """One table cell: shown text, the key the JavaScript sorts on (numbers sort numerically), a link."""
    return {"text": "" if text is None else str(text), "sort": "" if sort is None else sort, "href": href,
            "bold": bold, "title": title, "cls": cls}


def num(v: Any) -> Any:
    return "" if v is None else float(v)


def run_href(row: dict[str, Any], depth: int = 0) -> str:
    return "../" * depth + f"runs/{row['run_id']}.html"


def leaderboard_table(table: lb.Table, pages: set[str]) -> dict[str, Any]:
    """The columns of ``leaderboard.render_table`` as cells (bold = best as displayed, 3 decimals)."""
    head = ["group", "method"] + [f"{m} {arrow(h)}" for m, h in table.metrics]
    head += ["n", "unparsable", "sig.", "train s", "eval s/1k", "trainable params", "stored bytes/user"]
    shown = {m: {r["run_id"]: round(lb.value(r, m), 3) for r in table.rows if lb.value(r, m) is not None}
             for m, _ in table.metrics}
    bold = {m: {i for i, v in shown[m].items() if v == (max if h else min)(shown[m].values())}
            for m, h in table.metrics}
    rows = []
    for row in table.rows:
        rid = row["run_id"]
        cells = [cell(lb.group_of(row)), cell(lb.label(row), lb.label(row), href=run_href(row) if rid in pages else "")]
        cells += [cell(lb.fmt_metric(row, m), num(lb.value(row, m)), bold=rid in bold[m]) for m, _ in table.metrics]
        timings, cost = row.get("timings") or {}, row.get("cost") or {}
        n_text = f"{row.get('n')}" + (f" {lb.MARK_CAP}" if lb.method_cap(row) is not None else "")
        cells += [cell(n_text, num(row.get("n"))), cell(row.get("n_unparsable"), num(row.get("n_unparsable"))),
                  cell(table.markers.get(rid, ""), title="† vs zeroshot, ‡ vs best other, § vs best reference"),
                  cell(lb.fmt_scaled(timings.get("fit_s"), lb.SECONDS_1), num(timings.get("fit_s"))),
                  cell(lb.fmt_scaled(timings.get("eval_s_per_1k"), lb.SECONDS_0), num(timings.get("eval_s_per_1k"))),
                  cell(lb.fmt_scaled(cost.get("trainable_params")), num(cost.get("trainable_params"))),
                  cell(lb.fmt_scaled(cost.get("stored_bytes_per_user"), lb.BYTE_UNITS),
                       num(cost.get("stored_bytes_per_user")))]
        rows.append({"cells": cells, "cls": lb.group_of(row)})
    return {"head": head, "rows": rows, "title": lb.table_title(table), "data": lb.data_line(table.recorded),
            "notes": list(dict.fromkeys(table.notes)), "id": table.name}


def summary_table(tables: Sequence[lb.Table]) -> dict[str, Any]:
    head = ["method", "mean rank ↓", "tasks"] + [f"{t.name} ({t.metrics[0][0]})" for t in tables]
    rows = []
    for name, mean, per in lb.mean_ranks(tables):
        cells = [cell(name), cell(f"{mean:.2f}", mean), cell(len(per), len(per))]
        cells += [cell(f"{per[t.name]:g}", per[t.name]) if t.name in per else cell("–") for t in tables]
        rows.append({"cells": cells, "cls": ""})
    return {"head": head, "rows": rows, "title": "Summary: mean rank of the headline metric", "notes": []}


def cost_table(tables: Sequence[lb.Table], pages: set[str]) -> dict[str, Any]:
    head = ["task", "method", "headline", "value", "train s", "predict s", "eval s/1k", "trainable params",
            "stored bytes/user", "checkpoint bytes"]
    rows = []
    for t in tables:
        metric, hib = t.metrics[0]
        for row in t.rows:
            tm, cost = row.get("timings") or {}, row.get("cost") or {}
            rows.append({"cls": lb.group_of(row), "cells": [
                cell(t.name), cell(lb.label(row), lb.label(row), href=run_href(row) if row["run_id"] in pages else ""),
                cell(f"{metric} {arrow(hib)}"), cell(lb.fmt_metric(row, metric), num(lb.value(row, metric))),
                cell(lb.fmt_scaled(tm.get("fit_s"), lb.SECONDS_1), num(tm.get("fit_s"))),
                cell(lb.fmt_scaled(tm.get("predict_s"), lb.SECONDS_1), num(tm.get("predict_s"))),
                cell(lb.fmt_scaled(tm.get("eval_s_per_1k"), lb.SECONDS_0), num(tm.get("eval_s_per_1k"))),
                cell(lb.fmt_scaled(cost.get("trainable_params")), num(cost.get("trainable_params"))),
                cell(lb.fmt_scaled(cost.get("stored_bytes_per_user"), lb.BYTE_UNITS), num(cost.get("stored_bytes_per_user"))),
                cell(lb.fmt_scaled(cost.get("checkpoint_bytes"), lb.BYTE_UNITS), num(cost.get("checkpoint_bytes")))]})
    return {"head": head, "rows": rows, "title": "Cost of every row", "notes": []}
