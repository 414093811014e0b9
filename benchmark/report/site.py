"""The results site: ``results/site/`` (static HTML, CSS and a little JavaScript) from ``runs.jsonl`` and run folders.

    python -m benchmark.report.site [--results results] [--out results/site]   # `make report`

Opens from the file system (no server, no network). Nothing is recomputed from a model, and nothing is computed
differently from the markdown leaderboard: the tables, markers, notes, ranks and plots come from
``benchmark.report.leaderboard`` (same row selection, same paired tests), the compare pages from
``benchmark.report.compare.compare_runs``. Pages, rendered with Jinja2 templates (``templates/``):

* ``index.html``      every leaderboard section: sortable tables with CIs and significance markers, plots, ranks;
* ``cost.html``       per section: quality against per-user cost (the rows' own cost fields) and the cost plot;
* ``training.html``   training curves (``train_loss``, ``val_loss``, ``lr``) of every run with Lightning logs;
* ``runs/<run_id>.html``  one per leaderboard row: provenance, resolved config, metrics, cost, curves and its
  questions (prompt when the run recorded it, raw output, final answer, gold, per-example score), filterable;
* ``compare/<pair>.html`` two runs on the same ids: the paired test on every metric and the questions where
  they disagree. Pre-rendered pairs: each LLM row against zeroshot and against the best reference baseline of
  its table (the same pairs the † and § markers test).

Pages are written for the rows the leaderboard shows (finished, latest per key); the index says how many
recorded rows that leaves out. If the site would exceed ``--max-mb``, the question tables of older sections
are dropped first (and the index says so). The output is deterministic: same inputs, same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from benchmark.report import leaderboard as lb
from benchmark.report.compare import DEFAULT_BOOT, NotComparable, PairedTester, compare_runs, read_rows, samples_path
from benchmark.report.plots import arrow
from benchmark.contract.trainlog import METRICS as CURVE_METRICS, read_curves

HERE = Path(__file__).resolve().parent
PROMPTS_FILE = "prompts.jsonl"  # optional per run: {"id", "prompt"} lines, when samples carry no "prompt"
PER_EXAMPLE = {"classification": ("correct", True), "rating": ("abs_err", False)}  # else the headline metric


# ---------------------------------------------------------------------------------------------- cells
def cell(text: Any, sort: Any = None, *, href: str = "", bold: bool = False, title: str = "", cls: str = "") -> dict:
    """One table cell: shown text, the key the JavaScript sorts on (numbers sort numerically), a link."""
    return {"text": "" if text is None else str(text), "sort": "" if sort is None else sort, "href": href,
            "bold": bold, "title": title, "cls": cls}


def num(v: Any) -> Any:
    return "" if v is None else float(v)


def run_href(row: dict[str, Any], depth: int = 0) -> str:
    return "../" * depth + f"runs/{row['run_id']}.html"


def pair_name(a: dict[str, Any], b: dict[str, Any]) -> str:
    return hashlib.sha256(f"{a['run_id']}\n{b['run_id']}".encode()).hexdigest()[:16] + ".html"


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
        cells += [cell(row.get("n"), num(row.get("n"))), cell(row.get("n_unparsable"), num(row.get("n_unparsable"))),
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


# ---------------------------------------------------------------------------------------------- run folders
def read_records(results: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's sample records in file order, with ``prompt`` filled from ``prompts.jsonl`` when present."""
    path = samples_path(results, row)
    if not path.exists():
        return []
    recs = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not a JSON sample record ({e})") from None
    prompts_file = path.parent / PROMPTS_FILE
    if prompts_file.exists():
        prompts = {}
        for i, line in enumerate(prompts_file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rec = json.loads(line)
                if "id" not in rec or "prompt" not in rec:
                    raise ValueError(f"{prompts_file}:{i}: a prompt record needs 'id' and 'prompt'")
                prompts[str(rec["id"])] = rec["prompt"]
        for r in recs:
            r.setdefault("prompt", prompts.get(str(r.get("id"))))
    return recs


def example_score(kind: str, headline: str, scores: dict[str, Any]) -> tuple[float | None, bool]:
    """(the per-example value shown, whether the example is 'wrong': below the best value an example can get)."""
    key, hib = PER_EXAMPLE.get(kind, (headline, True))
    v = scores.get(key)
    if v is None:
        return None, False
    v = float(v)
    return v, (v < 1.0) if hib else (v > 0.0)


def question_rows(recs: Sequence[dict[str, Any]], kind: str, headline: str) -> list[dict[str, Any]]:
    out = []
    for r in recs:
        v, wrong = example_score(kind, headline, r.get("scores") or {})
        raw, final = r.get("raw_output"), r.get("output")
        out.append({"id": str(r.get("id")), "user": str(r.get("user_id", "")), "prompt": r.get("prompt"),
                    "raw": raw, "raw_same": raw == final, "output": final, "gold": r.get("gold"),
                    "score": "–" if v is None else f"{v:.3g}", "score_sort": "" if v is None else v,
                    "wrong": wrong, "scores": json.dumps(r.get("scores") or {}, sort_keys=True)})
    return out


def config_text(results: Path, row: dict[str, Any]) -> str:
    path = results / "runs" / row["run_id"] / "config.yaml"
    if path.exists():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(row.get("config") or {}, sort_keys=False) if row.get("config") else "not recorded"


def provenance(row: dict[str, Any]) -> list[tuple[str, str]]:
    d, git = row.get("data") or {}, row.get("git") or {}
    commit = f"{git.get('commit', '?')}{' (dirty, diff sha256 ' + str(git.get('diff_sha256')) + ')' if git.get('dirty') else ''}"
    out = [("run id", row["run_id"]), ("status", row.get("status", "?")), ("task", f"{row['task']} v{row.get('task_version', '?')}"),
           ("method", lb.label(row)), ("group", lb.group_of(row)), ("profile", str(row.get("profile"))),
           ("answer mode", str(row.get("answer_mode"))), ("commit", commit), ("config hash", str(row.get("config_hash"))),
           ("data", f"{d.get('source')} (root {d.get('root')}), eval split {d.get('eval_split')}, train split "
                    f"{d.get('train_split')}"),
           ("data digest", str(d.get("digest"))), ("evaluated ids sha256", str(d.get("ids_sha256"))),
           ("questions", f"{row.get('n')} of {d.get('n_available')} (cap {d.get('limit')}), {row.get('n_users')} users; "
                         f"{row.get('n_train')} training questions"),
           ("seed", str(row.get("seed"))), ("finished at", str(row.get("finished_at")))]
    for part in ("backbone", "embedder"):
        m = row.get(part)
        out.append((part, "none loaded" if not m else ", ".join(f"{k} {v}" for k, v in m.items())))
    pk = row.get("packages") or {}
    out.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(pk.items())) or "not recorded"))
    host = row.get("host") or {}
    out.append(("host", ", ".join(f"{k} {v}" for k, v in host.items()) or "not recorded"))
    return out


MAX_SEPARATE = 3  # more trainings of one kind than this (OPPU's per-user LoRAs) share one chart per metric


def curves(results: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's Lightning logs as small charts: one per (training, metric); many per-user trainings overlaid."""
    logged = read_curves(results / "runs" / row["run_id"])
    users = [c for c in logged if c.name.startswith("user-")]
    groups = [(c.name, [c]) for c in logged if c not in users or len(users) <= MAX_SEPARATE]
    if len(users) > MAX_SEPARATE:
        groups.append((f"per-user trainings ({len(users)} users, overlaid)", users))
    out = []
    for name, members in groups:
        charts = []
        for m in CURVE_METRICS:
            series = [c.series[m] for c in members if c.series.get(m)]
            if series:
                last = [c.last(m) for c in members if c.series.get(m)]
                charts.append({"metric": m, "svg": svg_curve(series),
                               "last": statistics.median(last), "lines": len(series)})
        if charts:
            out.append({"name": name, "charts": charts})
    return out


def svg_curve(series: list[list[tuple[int, float]]], width: int = 320, height: int = 120, pad: int = 28) -> dict[str, Any]:
    """Polyline coordinates of one or more series on shared axes, for a small inline SVG chart (the template
    draws the frame and labels)."""
    pts = [p for s in series for p in s]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    sx = (width - 2 * pad) / ((x1 - x0) or 1)
    sy = (height - 2 * pad) / ((y1 - y0) or 1)
    lines = [[(round(pad + (x - x0) * sx, 1), round(height - pad - (y - y0) * sy, 1)) for x, y in s] for s in series]
    return {"lines": lines, "width": width, "height": height, "pad": pad, "x0": x0, "x1": x1, "y0": y0, "y1": y1,
            "n": len(pts)}


# ---------------------------------------------------------------------------------------------- pairs
@dataclass
class Pair:
    a: dict[str, Any]
    b: dict[str, Any]
    why: str  # "vs zeroshot" | "vs best reference"
    table: str


def sensible_pairs(tables: Sequence[lb.Table]) -> list[Pair]:
    """Each LLM row against zeroshot and against the best reference baseline of its table (the †, § tests)."""
    out, seen = [], set()
    for t in tables:
        metric, hib = t.metrics[0]
        zero = lb.best([r for r in t.rows if r["method"] == lb.ZERO_SHOT], metric, hib)
        ref = lb.best([r for r in t.rows if lb.group_of(r) == lb.REFERENCE], metric, hib)
        for row in t.rows:
            if lb.group_of(row) == lb.REFERENCE:
                continue
            for other, why in ((zero, "vs zeroshot"), (ref, "vs best reference")):
                if other is not None and other is not row and (row["run_id"], other["run_id"]) not in seen:
                    seen.add((row["run_id"], other["run_id"]))
                    out.append(Pair(row, other, why, t.name))
    return out


def compare_page(results: Path, pair: Pair, n_boot: int, seed: int) -> dict[str, Any]:
    from benchmark.data.tasks import load_task

    a, b = pair.a, pair.b
    try:
        comps = compare_runs(results, a, b, None, n_boot, seed)
    except (NotComparable, FileNotFoundError, ValueError, KeyError) as e:
        return {"error": str(e), "a": a, "b": b, "why": pair.why, "table": pair.table, "tests": [], "rows": []}
    spec = load_task(a["task"])
    headline = spec.metrics[0].name
    ra = {str(r["id"]): r for r in read_records(results, a)}
    rb = {str(r["id"]): r for r in read_records(results, b)}
    rows, same = [], 0
    for qid in sorted(ra):
        x, y = ra[qid], rb[qid]
        sx, _ = example_score(spec.kind, headline, x.get("scores") or {})
        sy, _ = example_score(spec.kind, headline, y.get("scores") or {})
        if x.get("output") == y.get("output") and sx == sy:
            same += 1
            continue
        rows.append({"id": qid, "user": str(x.get("user_id", "")), "gold": x.get("gold"), "a": x.get("output"),
                     "b": y.get("output"), "sa": "–" if sx is None else f"{sx:.3g}", "sb": "–" if sy is None else f"{sy:.3g}",
                     "d": "" if sx is None or sy is None else sx - sy})
    tests = [{"metric": f"{c.metric} {arrow(c.higher_is_better)}", "a": f"{c.value_a:.4f}", "b": f"{c.value_b:.4f}",
              "delta": f"{c.delta:+.4f}", "ci": f"[{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]", "p": f"{c.p_value:.4f}",
              "verdict": c.verdict} for c in comps]
    return {"error": "", "a": a, "b": b, "why": pair.why, "table": pair.table, "tests": tests, "rows": rows,
            "n": comps[0].n if comps else 0, "same": same, "n_boot": n_boot, "seed": seed}


# ---------------------------------------------------------------------------------------------- build
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = md_inline
    return env


def md_inline(text: str) -> Any:
    """The leaderboard's inline markdown (`code`, **bold**) as HTML, escaped first."""
    import re

    from markupsafe import Markup, escape
    html = str(escape(text))
    html = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html)
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    html = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", html)
    return Markup(html)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(results: str | Path = "results", out: str | Path | None = None, n_boot: int = DEFAULT_BOOT,
          seed: int = 0, max_mb: float = 30.0) -> dict[str, Any]:
    """Render the site; returns {pages, bytes, runs, pairs, dropped_questions}."""
    from benchmark.cache.store import atomic_write_text
    from benchmark.data.tasks import load_task, task_names

    results = Path(results)
    out = Path(out) if out else results / "site"
    rows = read_rows(results)
    selected = lb.select_rows(rows)
    tester = PairedTester(results, n_boot, seed)
    sections = []
    for i, (key, srows) in enumerate(lb.sections(selected)):
        tables = lb.section_tables(srows, tester)
        sections.append({"key": key, "rows": srows, "tables": tables, "slug": f"s{i}", "current": i == 0,
                         "title": lb.section_title(key), "models": lb.section_models(srows)})
    pages = {r["run_id"] for s in sections for r in s["rows"]}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "runs").mkdir(parents=True)
    (tmp / "compare").mkdir()
    for name in ("site.css", "site.js"):
        shutil.copyfile(HERE / "templates" / name, tmp / name)
    env = environment()

    def write(rel: str, template: str, **kw) -> None:
        depth = rel.count("/")
        atomic_write_text(tmp / rel, env.get_template(template).render(root="../" * depth, **kw))

    for s in sections:
        s["plots"] = [(cap, p.relative_to(tmp).as_posix()) for cap, p in lb.section_plots(s["key"], s["tables"], tmp / "plots")]
        s["html_tables"] = [leaderboard_table(t, pages) for t in s["tables"]]
        s["summary"] = summary_table(s["tables"])
        s["cost"] = cost_table(s["tables"], pages)
        s["pairs"] = sensible_pairs(s["tables"])

    # run pages: question tables of older sections go first when the budget is exceeded
    budget, dropped = max_mb * 2**20, []
    run_pages: list[tuple[dict, dict]] = []
    pair_links: dict[str, list[tuple[str, str]]] = {}
    for s in sections:
        for p in s["pairs"]:
            pair_links.setdefault(p.a["run_id"], []).append((f"vs {lb.label(p.b)} ({p.why[3:]})", pair_name(p.a, p.b)))
            pair_links.setdefault(p.b["run_id"], []).append((f"vs {lb.label(p.a)}", pair_name(p.a, p.b)))
    trained = []
    for s in sections:
        for t in s["tables"]:
            spec = load_task(t.task) if t.task in task_names() else None
            for row in t.rows:
                recs = read_records(results, row)
                q = question_rows(recs, spec.kind if spec else "generation", t.metrics[0][0])
                cv = curves(results, row)
                if cv:
                    trained.append({"row": row, "curves": cv, "section": s["title"]})
                ctx = {"row": row, "section": s, "table": t.name, "questions": q, "curves": cv,
                       "provenance": provenance(row), "config": config_text(results, row),
                       "metrics": [(m, arrow(h), lb.fmt_metric(row, m)) for m, h in t.metrics],
                       "timings": row.get("timings") or {}, "cost": row.get("cost") or {},
                       "markers": t.markers.get(row["run_id"], ""), "pairs": pair_links.get(row["run_id"], []),
                       "prompts_recorded": any(x["prompt"] is not None for x in q),
                       "users": sorted({x["user"] for x in q})}
                run_pages.append((row, ctx))
    for row, ctx in run_pages:
        write(f"runs/{row['run_id']}.html", "run.html", **ctx, dropped=False)
    size = dir_bytes(tmp)
    for s in reversed(sections):  # oldest section first
        if size <= budget or s["current"]:
            break
        for row, ctx in run_pages:
            if ctx["section"] is s:
                write(f"runs/{row['run_id']}.html", "run.html", **{**ctx, "questions": [], "users": []}, dropped=True)
        dropped.append(s["title"])
        size = dir_bytes(tmp)

    compares = []
    for s in sections:
        for p in s["pairs"]:
            page = compare_page(results, p, n_boot, seed)
            write(f"compare/{pair_name(p.a, p.b)}", "compare.html", page=page, section=s)
            compares.append({"section": s["title"], "table": p.table, "a": lb.label(p.a), "b": lb.label(p.b),
                             "why": p.why, "href": f"compare/{pair_name(p.a, p.b)}",
                             "n_diff": len(page["rows"]), "error": page["error"],
                             "verdict": page["tests"][0]["verdict"] if page["tests"] else "not tested",
                             "p": page["tests"][0]["p"] if page["tests"] else "–"})
    status = Counter(r["status"] for r in rows)
    common = {"sections": sections, "n_rows": len(rows), "n_pages": len(pages), "status": sorted(status.items()),
              "info": lb.header_info(selected, n_boot, seed), "dropped": dropped, "max_mb": max_mb}
    write("index.html", "index.html", **common)
    write("cost.html", "cost.html", **common)
    write("training.html", "training.html", trained=trained, **common)
    write("compare.html", "compare_index.html", compares=compares, **common)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {"pages": sum(1 for _ in out.rglob("*.html")), "bytes": dir_bytes(out), "runs": len(pages),
            "pairs": len(compares), "dropped_questions": dropped, "out": str(out)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.report.site", description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results", help="results dir holding runs.jsonl and runs/")
    ap.add_argument("--out", default=None, help="site folder (default: <results>/site)")
    ap.add_argument("--n-boot", type=int, default=DEFAULT_BOOT, help="paired-bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-mb", type=float, default=30.0, help="size budget; older sections lose question tables first")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    info = build(args.results, args.out, args.n_boot, args.seed, args.max_mb)
    print(f"wrote {info['out']}/index.html: {info['pages']} pages ({info['runs']} runs, {info['pairs']} compare pages), "
          f"{info['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f}s"
          + (f"; question tables dropped for {info['dropped_questions']}" if info["dropped_questions"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
