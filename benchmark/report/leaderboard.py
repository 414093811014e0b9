"""The leaderboard: ``results/leaderboard.md`` (+ PNG plots) rendered from ``results/runs.jsonl``.

    python -m benchmark.report.leaderboard [--results results] [--out results/leaderboard.md]   # `make leaderboard`

Nothing is recomputed from a model (as lm-eval's ``make_table`` and HELM's ``helm-summarize`` do):

* rows: only ``status == "finished"``; for each (data source + digest, eval split, profile, question cap, task,
  method, variant) the latest by ``finished_at`` (file order breaks ties), peft ``method_comparison``'s "latest
  row per key"; one section per (source, split, profile, question cap), the newest first; per profile the
  section of the cap ``configs/profiles/<profile>.yaml`` declares now leads, ``smoke`` sections follow under their
  own heading and every other section goes to a closing archive block labelled by its protocol;
* method-capped rows (``data.method_limit``: a nested prefix of the seeded sample) are marked ¶ and paired on
  the ids they share with the other run;
* values and 95% CIs are the rows' own; the best value per metric column is bold, respecting higher_is_better;
* significance markers come from paired bootstrap tests on the rows' per-example scores
  (``benchmark.report.pairing.paired`` -> ``benchmark.scoring.metrics.paired_test``) of the task's headline metric, only
  between runs that scored the same example ids: † vs zeroshot, ‡ vs the best other method, § vs the best
  LLM-free reference baseline (LLM rows only), each at p < 0.05;
* a summary ranks methods by their mean rank on the headline metric over the tasks they have a row for;
* the Persona-Plug paper's *reported* numbers (``configs/reported/pplug_paper.yaml``) get their own block.

The output is deterministic for the same inputs (sorted everywhere, seeded tests, no clock), and written
atomically, so the committed file changes only when results change.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from benchmark.models.answers import CHOICE_NORMS
from benchmark.report.pairing import ALPHA, DEFAULT_BOOT, PairedTester, method_cap
from benchmark.report.rows import load_rows
from benchmark.report.plots import Panel, Point, arrow, render_plots

REPORTED_FILE = Path(__file__).resolve().parents[2] / "configs" / "reported" / "pplug_paper.yaml"
ZERO_SHOT, REFERENCE = "zeroshot", "reference"
MARK_ZS, MARK_BEST, MARK_REF, MARK_CAP = "†", "‡", "§", "¶"
PROFILES_DIR = Path(__file__).resolve().parents[2] / "configs" / "profiles"
APART = {"smoke": "Smoke runs (`PROFILE=smoke`): a handful of questions and a few training steps, to check that "
                  "every method runs end to end. Plumbing checks, not results: never compare them with the "
                  "tables above."}
SCORER = ("official LaMP semantics (LaMP `eval/evaluation.py`): predictions and golds stripped; "
          "LaMP-1/2 exact label match, anything else unparsable (index -1), macro-F1 over all labels; LaMP-3 "
          "`float()` with the worst-extreme fallback for unparsable outputs; implemented in `benchmark/scoring/metrics.py`")
ROUGE = ("`rouge_score` rouge1 / rougeL F-measure, `use_stemmer=False`, default tokenizer (lower-case, a-z0-9), "
         "exact mean over examples (the official `evaluate` path reports a bootstrap median of the same mean)")


@dataclass
class Table:
    """One task (on one data digest) in one section: rows in display order (reference block first, best first)."""

    task: str
    metrics: list[tuple[str, bool]]  # (name, higher_is_better); the first is the headline
    rows: list[dict[str, Any]]
    name: str = ""  # unique within the section: the task, or task@digest when a task has several data digests
    markers: dict[str, str] = field(default_factory=dict)  # run_id -> markers
    notes: list[str] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)  # the same rows in file order


def group_of(row: dict[str, Any]) -> str:
    return REFERENCE if row.get("group") == REFERENCE else "llm"


def label(row: dict[str, Any]) -> str:
    return row.get("display") or (f"{row['method']} ({row['variant']})" if row.get("variant") else row["method"])


def answer_label(row: dict[str, Any]) -> str:
    """The row's answer mode as shown: choice rows name their normalisation (``choice/sum``); choice rows written
    before ``decoding.choice_norm`` existed ranked by the mean per token (``choice/token``)."""
    mode = row.get("answer_mode")
    if mode != "choice":
        return str(mode)
    return f"choice/{row.get('choice_norm') or 'token'}"


def section_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """(data source, eval split, profile, evaluated questions per task): rows of one protocol. A profile whose
    caps changed (e.g. 50 -> 25 questions) starts a new section instead of mixing with its older rows."""
    d = row.get("data", {})
    return (str(d.get("source", "?")), str(d.get("eval_split", "?")), str(row.get("profile", "?")),
            str(d.get("limit") or "all"))


def digest(row: dict[str, Any]) -> str:
    return str(row.get("data", {}).get("digest", "?"))  # per task: sha256 over the task's data files


def select_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished rows only; the latest per (section, data digest, task, method, variant), in file order."""
    latest: dict[tuple, tuple[str, int]] = {}
    for i, row in enumerate(rows):
        if row["status"] != "finished":
            continue
        key = (*section_key(row), digest(row), row["task"], row["method"], row.get("variant", ""))
        stamp = (str(row.get("finished_at", "")), i)
        if key not in latest or stamp >= latest[key]:
            latest[key] = stamp
    return [rows[i] for _, i in sorted(latest.values(), key=lambda s: s[1])]


def value(row: dict[str, Any], metric: str) -> float | None:
    entry = row.get("metrics", {}).get(metric)
    return None if not entry or entry.get("value") is None else float(entry["value"])


def best(rows: Sequence[dict[str, Any]], metric: str, hib: bool) -> dict[str, Any] | None:
    """The best-valued row (ties: the first label in sort order); None if no row has the metric."""
    scored = [r for r in rows if value(r, metric) is not None]
    sign = 1.0 if hib else -1.0
    return min(scored, key=lambda r: (-sign * value(r, metric), label(r)), default=None)


def task_metrics(task: str, rows: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The spec's metrics in spec order (headline first), then any extra metric a row carries."""
    from benchmark.data.tasks import load_task, task_names

    out = [(m.name, m.higher_is_better) for m in load_task(task).metrics] if task in task_names() else []
    for row in rows:
        for name, entry in row.get("metrics", {}).items():
            if name not in dict(out):
                out.append((name, bool(entry.get("higher_is_better", True))))
    return out


def build_table(task: str, rows: Sequence[dict[str, Any]], name: str = "") -> Table:
    metrics = task_metrics(task, rows)
    head, sign = metrics[0][0], (1.0 if metrics[0][1] else -1.0)
    ordered = sorted(rows, key=lambda r: (group_of(r) != REFERENCE, value(r, head) is None,
                                          -sign * (value(r, head) or 0.0), label(r)))
    return Table(task=task, metrics=metrics, rows=ordered, name=name or task)


def mark(table: Table, tester: PairedTester) -> None:
    """Fill ``table.markers`` (†‡§) and ``table.notes`` (comparisons that could not be tested)."""
    metric, hib = table.metrics[0]
    refs = [r for r in table.rows if group_of(r) == REFERENCE]
    zero = best([r for r in table.rows if r["method"] == ZERO_SHOT], metric, hib)
    for row in table.rows:
        targets = [(MARK_ZS, zero), (MARK_BEST, best([r for r in table.rows if r is not row], metric, hib))]
        if group_of(row) != REFERENCE:
            targets.append((MARK_REF, best(refs, metric, hib)))
        marks = ""
        for sign, other in targets:
            if other is None or other is row:
                continue
            result = tester.significant(row, other, metric)
            if isinstance(result, str):
                table.notes.append(f"{sign} not tested for {label(row)} vs {label(other)}: {result}")
            elif result:
                marks += sign
        table.markers[row["run_id"]] = marks


def esc(text: Any) -> str:
    return str(text).replace("|", "\\|")


def fmt_metric(row: dict[str, Any], metric: str) -> str:
    v, ci = value(row, metric), row.get("metrics", {}).get(metric, {}).get("ci95")
    if v is None:
        return "–"
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else f"{v:.3f}"


COUNT_UNITS = (("G", 1e9, "{:.2f}"), ("M", 1e6, "{:.2f}"), ("k", 1e3, "{:.2f}"), ("", 1, "{:.0f}"))
BYTE_UNITS = ((" GiB", 2**30, "{:.1f}"), (" MiB", 2**20, "{:.1f}"), (" KiB", 2**10, "{:.1f}"), (" B", 1, "{:.0f}"))
SECONDS_1, SECONDS_0 = (("", 1, "{:.1f}"),), (("", 1, "{:.0f}"),)


def fmt_scaled(n: Any, units: tuple = COUNT_UNITS) -> str:
    """``1234567 -> 1.23M`` (counts), ``2048 -> 2.0 KiB`` (``BYTE_UNITS``), ``12.34 -> 12.3`` (``SECONDS_1``)."""
    if n is None:
        return "–"
    unit, size, fmt = next((u for u in units if abs(float(n)) >= u[1]), units[-1])
    return fmt.format(float(n) / size) + unit


def render_table(table: Table) -> list[str]:
    head = ["group", "method"] + [f"{m} {arrow(h)}" for m, h in table.metrics]
    head += ["n", "unparsable", "sig.", "train s", "eval s/1k", "trainable params", "stored bytes/user"]
    shown = {m: {r["run_id"]: round(value(r, m), 3) for r in table.rows if value(r, m) is not None}
             for m, _ in table.metrics}  # bold = equal to the best value *as displayed* (3 decimals)
    bold = {m: {i for i, v in shown[m].items() if v == (max if h else min)(shown[m].values())}
            for m, h in table.metrics}
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        cells = [group_of(row), esc(label(row))]
        for name, _ in table.metrics:
            cell = fmt_metric(row, name)
            cells.append(f"**{cell}**" if row["run_id"] in bold[name] else cell)
        timings, cost = row.get("timings") or {}, row.get("cost") or {}
        n_cell = fmt_scaled(row.get("n"), SECONDS_0) + (f" {MARK_CAP}" if method_cap(row) is not None else "")
        cells += [n_cell, fmt_scaled(row.get("n_unparsable"), SECONDS_0),
                  table.markers.get(row["run_id"], ""), fmt_scaled(timings.get("fit_s"), SECONDS_1),
                  fmt_scaled(timings.get("eval_s_per_1k"), SECONDS_0), fmt_scaled(cost.get("trainable_params")),
                  fmt_scaled(cost.get("stored_bytes_per_user"), BYTE_UNITS)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def distinct(rows: Sequence[dict[str, Any]], get) -> str:
    return ", ".join(f"`{v}`" for v in sorted({str(get(r)) for r in rows} - {"None", ""})) or "–"


def ident(row: dict[str, Any], part: str) -> Any:
    return (row.get(part) or {}).get("id")  # backbone / embedder; None when a run loaded no model (reference)


def mean_ranks(tables: Sequence[Table]) -> list[tuple[str, float, dict[str, float]]]:
    """(method, mean rank, {task: rank}) by the headline metric; ties share the average rank."""
    ranks: dict[str, dict[str, float]] = defaultdict(dict)
    for t in tables:
        metric, hib = t.metrics[0]
        sign = 1.0 if hib else -1.0
        keyed = [(-sign * value(r, metric), label(r)) for r in t.rows if value(r, metric) is not None]
        for v, name in keyed:
            ranks[name][t.name] = sum(x < v for x, _ in keyed) + (sum(x == v for x, _ in keyed) + 1) / 2
    out = [(name, sum(r.values()) / len(r), r) for name, r in ranks.items()]
    return sorted(out, key=lambda x: (x[1], x[0]))


def render_summary(tables: Sequence[Table]) -> list[str]:
    head = ["method", "mean rank ↓", "tasks"] + [f"{t.name} ({t.metrics[0][0]})" for t in tables]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, mean, per in mean_ranks(tables):
        shown = [f"{per[t.name]:g}" if t.name in per else "–" for t in tables]
        lines.append("| " + " | ".join([esc(name), f"{mean:.2f}", str(len(per)), *shown]) + " |")
    return lines


def task_order(tasks: set[str]) -> list[str]:
    from benchmark.data.tasks import task_names
    known = task_names()
    return sorted(tasks, key=lambda t: (known.index(t) if t in known else len(known), t))


def data_line(rows: Sequence[dict[str, Any]]) -> str:
    full = [r for r in rows if method_cap(r) is None] or list(rows)
    d = full[0].get("data", {})
    same = len({r.get("data", {}).get("ids_sha256") for r in full}) == 1
    ids = f"ids sha256 `{str(d.get('ids_sha256', '?'))[:12]}`" if same else "**rows scored different example sets**"
    capped = sorted({f"{label(r)} ({r.get('n')})" for r in rows if method_cap(r) is not None})
    note = (f"; {MARK_CAP} method-capped: {', '.join(capped)} scored the first questions of the same seeded order, "
            f"and their paired tests use those shared ids") if capped else ""
    return (f"{d.get('limit') or 'all'} of {d.get('n_available', '?')} `{d.get('eval_split', '?')}` questions "
            f"(seeded sample; {ids}), {full[0].get('n_users', '?')} users; train split `{d.get('train_split', '?')}`; "
            f"data digest `{digest(full[0])[:12]}`{note}")


def panel(table: Table) -> Panel:
    metric, hib = table.metrics[0]
    points = []
    for r in table.rows:
        if value(r, metric) is None:
            continue
        ci = r["metrics"][metric].get("ci95") or (None, None)
        cost = [(r.get("cost") or {}).get(k) for k in ("stored_bytes_per_user", "trainable_params")]
        total = None if cost == [None, None] else float(sum(c or 0 for c in cost))
        points.append(Point(label(r), group_of(r), value(r, metric), ci[0], ci[1], total))
    return Panel(table.name, metric, hib, tuple(points))


def section_tables(rows: list[dict[str, Any]], tester: PairedTester) -> list[Table]:
    """One marked table per (task, data digest) of a section, in LaMP task order (the markdown and the site)."""
    by_task: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_task[row["task"]][digest(row)].append(row)
    tables = []
    for task, dg in ((t, dg) for t in task_order(set(by_task)) for dg in sorted(by_task[t])):
        name = task if len(by_task[task]) == 1 else f"{task}@{dg[:8]}"
        table = build_table(task, by_task[task][dg], name)
        table.recorded = by_task[task][dg]
        mark(table, tester)
        tables.append(table)
    return tables


def table_title(table: Table) -> str:
    from benchmark.data.tasks import load_task, task_names
    return f"{table.name}: {load_task(table.task).title}" if table.task in task_names() else table.name


def section_title(key: tuple[str, str, str, str]) -> str:
    source, split, profile, limit = key
    return f"Data `{source}` · eval split `{split}` · profile `{profile}` · {limit} questions per task"


def section_plots(key: tuple[str, str, str, str], tables: Sequence[Table], plot_dir: Path) -> list[tuple[str, Path]]:
    """Both figures of a section into ``plot_dir``: (caption, path) pairs."""
    source, split, profile, limit = key
    cap = "" if limit == "all" else f"-n{limit}"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{source}-{split}-{profile}{cap}")
    title = f"{source} / {split} / profile {profile} / {limit} questions"
    return render_plots(slug, title, [panel(t) for t in tables], plot_dir)


def section_models(rows: Sequence[dict[str, Any]]) -> str:
    return (f"Backbone {distinct(rows, lambda r: ident(r, 'backbone'))}; "
            f"embedder {distinct(rows, lambda r: ident(r, 'embedder'))}; answer mode "
            f"{distinct(rows, answer_label)}.")


def render_section(key: tuple[str, str, str, str], rows: list[dict[str, Any]], tester: PairedTester,
                   plot_dir: Path | None, out_dir: Path) -> list[str]:
    lines = [f"## {section_title(key)}", "", section_models(rows), ""]
    tables = section_tables(rows, tester)
    for table in tables:
        lines += [f"### {table_title(table)}", "", data_line(table.recorded) + ".", "", *render_table(table), ""]
        lines += [f"- {note}" for note in dict.fromkeys(table.notes)] + ([""] if table.notes else [])
    if plot_dir is not None:
        for caption, path in section_plots(key, tables, plot_dir):
            lines += [f"![{caption}]({path.relative_to(out_dir).as_posix()})", ""]
    lines += ["#### Summary: mean rank of the headline metric over the tasks a method has a row for", "",
              *render_summary(tables), ""]
    return lines


def configured_limit(profile: str) -> str | None:
    """The question cap the profile file declares now (``data.limit``; "all" for null), None if unknown."""
    import yaml

    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        return None
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data") or {}
    return str(data["limit"] or "all") if "limit" in data else None


def current_sections(ordered: Sequence[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    """Per (source, split, profile) the section of the current protocol: the one whose question cap is what the
    profile file declares now (none, until rows of that cap exist); the newest where the profile file declares
    no cap. Every other section goes to the archive."""
    out: dict[tuple, tuple] = {}
    for key in ordered:                                 # newest first
        declared = configured_limit(key[2])
        if declared is None:
            out.setdefault(key[:3], key)
        elif str(key[3]) == declared:
            out[key[:3]] = key
    return set(out.values())


def sections(selected: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str, str, str], list[dict[str, Any]]]]:
    """(section key, its rows in file order), the section with the newest row first: the current protocol."""
    grouped: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in selected:
        grouped[section_key(r)].append(r)

    def newest(key: tuple) -> tuple:
        return max(str(r.get("finished_at", "")) for r in grouped[key]), key
    return [(key, grouped[key]) for key in sorted(grouped, key=newest, reverse=True)]


def header_info(selected: Sequence[dict[str, Any]], n_boot: int, seed: int) -> list[tuple[str, str]]:
    """(key, markdown value) pairs describing what the shown rows share: models, scorer, CIs, tests, commits."""
    git = [r.get("git") or {} for r in selected]
    commits = Counter(f"{str(g.get('commit', '?'))[:10]}{'+dirty' if g.get('dirty') else ''}" for g in git)
    return [("profiles", distinct(selected, lambda r: r.get("profile"))),
            ("backbones", distinct(selected, lambda r: ident(r, "backbone"))),
            ("embedders", distinct(selected, lambda r: ident(r, "embedder"))),
            ("answer modes", distinct(selected, answer_label)),
            ("choice normalisation", "; ".join(f"`choice/{k}`: {v}" for k, v in CHOICE_NORMS.items())),
            ("scorer", SCORER), ("ROUGE", ROUGE),
            ("CIs", "95% percentile bootstrap over examples, as recorded in each row (`value [lo, hi]`)"),
            ("significance", f"paired bootstrap on per-example scores of the headline metric (first column), "
                             f"{n_boot} resamples, seed {seed}, two-sided p < {ALPHA}; only between runs that "
                             f"scored the same example ids, or on the shared ids where one run is method-capped "
                             f"({MARK_CAP})"),
            ("commits", ", ".join(f"`{c}` ({n} rows)" for c, n in sorted(commits.items())) or "–")]


def render_header(selected: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], n_boot: int,
                  seed: int) -> list[str]:
    status = Counter(r["status"] for r in rows)
    info = header_info(selected, n_boot, seed)
    return ["# LaMP personalisation leaderboard", "",
            f"Rendered by `python -m benchmark.report.leaderboard` from `runs.jsonl`: {len(selected)} rows shown of "
            f"{len(rows)} recorded ({', '.join(f'{n} {k}' for k, n in sorted(status.items())) or 'none'}; shown: "
            "finished runs only, the latest per data, split, profile, question cap, task, method and "
            "variant). Nothing here is recomputed from a model. How to read and reproduce a row: "
            "[results/README.md](README.md).", "",
            "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in info), "",
            f"Markers: **{MARK_ZS}** differs significantly from zeroshot; **{MARK_BEST}** from the best other "
            f"method in the table; **{MARK_REF}** (LLM methods) from the best LLM-free reference baseline; "
            f"**{MARK_CAP}** beside `n`: a method-capped row (a nested prefix of the task's seeded sample, tested on "
            "the shared ids). "
            "The direction is visible in the values. **Bold**: best value in its column (↑ higher is better, "
            "↓ lower). Reference rows (`group` = reference) come first, then LLM methods, each best first.", ""]


def render_reported(path: Path = REPORTED_FILE) -> list[str]:
    import yaml

    rep = yaml.safe_load(path.read_text(encoding="utf-8"))["reported"]
    prov, cols, setting = rep["provenance"], rep["columns"], rep["setting"]
    lines = [f"## {rep['title']}", "",
             f"> **Reported, not measured.** Quoted from {prov['original']} ({prov['source']} source, via "
             f"{prov['quoted_in']}; status: **{prov['status']}**). Setting: backbone `{setting['backbone']}`, "
             f"{setting['split']}, {setting['eval_split']}. These numbers come from `{path.name}`, are never "
             "mixed into the measured tables above and are not directly comparable with them.", "",
             f"| task | metric | {cols['best_baseline']} | {cols['pplug']} | relative |", "|---|---|---|---|---|"]
    for r in rep["rows"]:
        lines.append(f"| {r['task']} | {r['metric']} {arrow(r['higher_is_better'])} | {r['best_baseline']:.3f} "
                     f"| {r['pplug']:.3f} | {r['relative']} |")
    return lines + [""] + [f"- {note}" for note in rep.get("notes", [])] + [""]


def build(results: str | Path = "results", out: str | Path | None = None, n_boot: int = DEFAULT_BOOT,
          seed: int = 0, plots: bool = True, reported: Path = REPORTED_FILE) -> str:
    """Render the leaderboard markdown (and plots) from ``results``; write it atomically to ``out``."""
    from benchmark.cache.store import atomic_write_text

    results = Path(results)
    out = Path(out) if out else results / "leaderboard.md"
    rows = load_rows(results) if (results / "runs.jsonl").exists() else []
    selected = select_rows(rows)
    lines = render_header(selected, rows, n_boot, seed)
    tester = PairedTester(results, n_boot, seed)
    ordered = sections(selected)
    grouped = dict(ordered)
    keys = [k for k, _ in ordered]
    current = current_sections(keys)
    blocks = [("", [k for k in keys if k in current and k[2] not in APART])]
    blocks += [(f"# {text}", [k for k in keys if k in current and k[2] == profile]) for profile, text in APART.items()]
    blocks.append(("# Archive: earlier protocols. Each section names its protocol (profile, questions per task, "
                   "answer mode); rows there were produced by older code or caps and are never compared with the "
                   "current tables.", [k for k in keys if k not in current]))
    if not blocks[0][1]:
        lines += ["_No rows of the current protocol yet: each profile's current section holds the question cap its "
                  "file in `configs/profiles/` declares now; `make bench TASK=all METHOD=all` fills it. Earlier "
                  "protocols are in the archive below._", ""]
    for title, ks in blocks:
        if ks and title:
            lines += [title, ""]
        for key in ks:
            lines += render_section(key, grouped[key], tester, out.parent / "plots" if plots else None, out.parent)
    text = "\n".join(lines + render_reported(reported)).rstrip("\n") + "\n"
    atomic_write_text(out, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.report.leaderboard", description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results", help="results dir holding runs.jsonl and runs/")
    ap.add_argument("--out", default=None, help="markdown file (default: <results>/leaderboard.md)")
    ap.add_argument("--n-boot", type=int, default=DEFAULT_BOOT, help="paired-bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results) / "leaderboard.md"
    build(args.results, out, args.n_boot, args.seed, plots=not args.no_plots)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
