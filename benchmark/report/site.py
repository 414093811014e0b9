"""The results site: ``results/site/`` (static HTML, CSS and a little JavaScript) from ``runs.jsonl`` and run folders.

    python -m benchmark.report.site [--results results] [--out results/site]   # `make report`

Opens from the file system (no server, no network). Nothing is recomputed from a model, and nothing is computed
differently from the markdown leaderboard: the tables, markers, notes, ranks and plots come from
``benchmark.report.leaderboard`` (same row selection, same paired tests), the compare pages from
``benchmark.report.compare.compare_runs``. Tables as cells: ``site_tables.py``; what a run folder holds: ``run_folder.py``. Pages, rendered with Jinja2 templates (``templates/``):

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
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmark.report import leaderboard as lb
from benchmark.report.pairing import DEFAULT_BOOT, NotComparable, PairedTester, compare_runs
from benchmark.report.rows import load_rows
from benchmark.report.plots import arrow
from benchmark.report.run_folder import config_text, curves, example_score, provenance, question_rows, read_records
from benchmark.report.site_tables import cost_table, leaderboard_table, summary_table

HERE = Path(__file__).resolve().parent


def pair_name(a: dict[str, Any], b: dict[str, Any]) -> str:
    return hashlib.sha256(f"{a['run_id']}\n{b['run_id']}".encode()).hexdigest()[:16] + ".html"


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
    for qid in sorted(set(ra) & set(rb)):   # a method-capped run holds a nested prefix of the other's ids
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
    rows = load_rows(results)
    selected = lb.select_rows(rows)
    tester = PairedTester(results, n_boot, seed)
    sections = []
    ordered = lb.sections(selected)
    current = lb.current_sections([key for key, _ in ordered])   # the markdown leaderboard's rule: the rest is archive
    for i, (key, srows) in enumerate(ordered):
        tables = lb.section_tables(srows, tester)
        sections.append({"key": key, "rows": srows, "tables": tables, "slug": f"s{i}", "current": key in current,
                         "newest": i == 0,
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
        if size <= budget or s["current"] or s["newest"]:  # current and newest sections keep their questions
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
