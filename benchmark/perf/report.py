"""The ``make perf`` report: headline ratios against their goals, and ``perf.md`` / ``perf.json`` written side by
side (atomically) from the measurements of :mod:`benchmark.perf.suite` and :mod:`benchmark.perf.scaling`."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmark.runs import provenance as runs
from benchmark.cache.store import atomic_write_text

# None = reported without a goal: a BM25 ranking costs about as much as hashing its inputs into the cache key,
# so the rankings cache cannot be 10x faster there; the cache goal is the encode + rank one (dense).
GOALS = {"generation": 0.9, "bm25": 10.0, "dense_cache": 10.0, "bm25_cache": None}


def figures(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline ratios with their goals (PASS when measured >= goal)."""
    out = []

    def add(key: str, what: str, value: float | None, extra: str = "") -> None:
        goal = GOALS[key]
        out.append({"id": key, "what": what, "value": value, "goal": goal, "extra": extra,
                    "pass": None if goal is None else value is not None and value >= goal})
    if g := rep.get("generation"):
        add("generation", f"generation, suite / plain HF loop examples/s ({g['task']}, {g['prompts']} prompts, "
            f"batch {g['batch_size']})", g["ratio"],
            f"median ratio {g['ratio_median']:.2f}; outputs {'identical' if g['identical'] else 'differ'} "
            f"({g['mismatches']} of {g['prompts']})")
    if b := rep.get("bm25"):
        add("bm25", f"BM25 ranking, ours vs rank_bm25 ({b['task']}, {b['questions']} questions, {b['items']} items)",
            b["speedup"], f"mismatches top-1 / top-4 / full: {b['top1_mismatch']} / {b['top4_mismatch']} / "
            f"{b['full_mismatch']}")
    if c := rep.get("caches"):
        d, r = c["dense"], c["bm25"]
        add("dense_cache", f"dense encode + rank, cold / warm cache ({d['task']}, {d['texts']} texts)", d["speedup"],
            f"{d['cold_s']:.2f} s vs {d['warm_s']:.3f} s")
        add("bm25_cache", f"BM25 rank only, cold / warm rankings cache ({r['task']}, {r['questions']} questions)",
            r["speedup"], f"{r['cold_s']:.3f} s vs {r['warm_s']:.3f} s")
    return out


def render(rep: dict[str, Any], png_name: str, json_name: str) -> str:
    from benchmark.perf.scaling import markdown as scaling_md

    git, host = rep["git"], rep["host"]
    lines = ["# Performance and scale (`make perf`)", ""]
    if rep["quick"]:
        lines += ["**QUICK run (tiny sizes, synthetic data): a smoke test of the tool, not a measurement.**", ""]
    lines += [f"* command: `{rep['command']}`" + (f" (via `{rep['via']}`)" if rep.get("via") else ""),
              f"* commit: `{git['commit']}`{' (dirty: uncommitted changes, diff sha256 ' + git.get('diff_sha256', '')[:12] + ')' if git['dirty'] else ' (clean)'}",
              f"* date: {rep['started']} to {rep['finished']} ({rep['elapsed_s'] / 60:.1f} min)",
              f"* host: {host['machine']}, {host['cpus']} cores, torch threads {host['torch_threads']}, load average "
              f"(1/5/15 min) before {'/'.join(f'{x:.2f}' for x in rep['load_before'])}, after "
              f"{'/'.join(f'{x:.2f}' for x in rep['load_after'])}",
              f"* raw numbers: [{json_name}]({json_name}); every ratio below was measured side by side in this run", "",
              "| figure | measured | goal | result | notes |", "|---|---:|---:|---|---|"]
    for f in rep["figures"]:
        val = "n/a" if f["value"] is None else f"{f['value']:.2f}x"
        goal = "–" if f["goal"] is None else f">= {f['goal']:g}x"
        result = "info" if f["pass"] is None else "PASS" if f["pass"] else "MISS"
        lines.append(f"| {f['what']} | {val} | {goal} | {result} | {f['extra']} |")
    if not rep["figures"]:
        lines.append("| (no ratio section was run) | | | | |")
    if g := rep.get("generation"):
        lines += ["", "## 1. Generation: suite eval loop vs plain transformers loop", "",
                  f"{g['prompts']} prompts of {g['task']} ({g['data']}), backbone `{g['backbone']}`, batch "
                  f"{g['batch_size']}, max_new_tokens {g['max_new_tokens']}, beams {g['num_beams']}, input budget "
                  f"{g['max_input_tokens']} tokens, chat template {g['chat']}; {g['repeats']} alternating repeats.", "",
                  "| side | best s | median s | examples/s (best) | all repeats s |", "|---|---:|---:|---:|---|"]
        for side in ("suite", "plain"):
            t = g["times_s"][side]
            lines.append(f"| {side} | {min(t):.2f} | {statistics.median(t):.2f} | {g['prompts'] / min(t):.2f} | "
                         f"{', '.join(f'{x:.2f}' for x in t)} |")
        lines += ["", f"Outputs identical: {g['identical']} ({g['mismatches']} mismatches)."]
        lines += [f"* #{m['i']}: suite {m['suite']!r} / plain {m['plain']!r}" for m in g["mismatch_examples"]]
    if b := rep.get("bm25"):
        lines += ["", "## 2. BM25: benchmark.retrieval.bm25 vs rank_bm25 (scripts/bench_retrieval.py)", "",
                  f"Largest task of {b['root']}: {b['largest']}. Every question of train + dev + test, raw strings to "
                  f"full rankings, best of {b['repeats']}.", "",
                  "| task | questions | profile items | distinct docs | rank_bm25 s | ours s | speedup | top-1 / top-4 / full mismatches |",
                  "|---|---:|---:|---:|---:|---:|---:|---|",
                  f"| {b['task']} | {b['questions']} | {b['items']} | {b['distinct']} | {b['rank_bm25_s']:.3f} | "
                  f"{b['ours_s']:.3f} | {b['speedup']:.1f}x | {b['top1_mismatch']} / {b['top4_mismatch']} / "
                  f"{b['full_mismatch']} |"]
    if c := rep.get("caches"):
        d, r = c["dense"], c["bm25"]
        lines += ["", "## 3. Caches: cold vs warm (content-hash store, fresh temporary cache dir)", "",
                  f"{d['task']} ({c['root']}), every question of every split; embedder `{d['embedder']}` (load "
                  f"{d['load_s']:.1f} s, not included); warm = best of {c['repeats']}.", "",
                  "| run | seconds | embeddings hits / misses | rankings hits / misses |", "|---|---:|---|---|"]
        for label, key, stats in (("dense cold (empty cache)", "cold_s", d["cold"]),
                                  ("dense warm (same again)", "warm_s", d["warm"]),
                                  ("dense, embeddings warm, rankings deleted", "emb_warm_s", d["emb_warm"])):
            e, k = stats.get("embeddings", {}), stats.get("rankings", {})
            lines.append(f"| {label} | {d[key]:.3f} | {e.get('hits', 0)} / {e.get('misses', 0)} | "
                         f"{k.get('hits', 0)} / {k.get('misses', 0)} |")
        for label, key, stats in (("BM25 rank cold", "cold_s", r["cold"]), ("BM25 rank warm", "warm_s", r["warm"])):
            k = stats.get("rankings", {})
            lines.append(f"| {label} | {r[key]:.3f} | - | {k.get('hits', 0)} / {k.get('misses', 0)} |")
    if s := rep.get("scaling"):
        lines += ["", "## 4. Scaling with users", ""] + scaling_md(s, png_name)
    if rep["not_run"] or rep["errors"]:
        lines += ["", "## Sections not run or failed", ""] + [f"* {k}: {v}" for k, v in rep["not_run"].items()]
        lines += [f"* {k}: FAILED: {v} (traceback in the run's log)" for k, v in rep["errors"].items()]
    return "\n".join(lines) + "\n"


def write_report(rep: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(out.with_suffix(".json"), rep)
    atomic_write_text(out, render(rep, out.with_suffix(".png").name, out.with_suffix(".json").name))
