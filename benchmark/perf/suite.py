"""``make perf``: performance and scale figures, each a ratio measured side by side in one run on this machine.

    python -m benchmark.perf.suite [--quick] [--out results/perf.md] [--sections gen,bm25,cache,scaling] [key=value ...]

1. Generation: the suite's eval path (``Context(cfg).lm.answer`` -> ``LanguageModel.generate``: length-sorted
   batches of ``generate_batch_size``, chat template, left padding, inputs as embeddings) against a plain
   transformers loop a user would write (``apply_chat_template`` per prompt, left-padded ``tokenizer(...)``,
   ``model.generate(input_ids, attention_mask, ...)`` in batches of the same size in the given order) over the
   same prompts, model object, ``max_new_tokens`` and beams. Both truncate prompts to ``max_input_tokens`` of raw
   text. The two sides alternate (A B, B A, ...) so machine noise hits both; the headline uses each side's best
   time. Outputs are compared string by string. Goal: suite / plain examples per second >= 0.9.
2. BM25: ``scripts/bench_retrieval.py``'s measurement (``benchmark.retrieval.bm25`` vs rank_bm25 as LaMP calls it, every
   question of every split, identical top-1 / top-4 / full rankings checked) on the largest mini task. Goal >= 10x.
3. Caches: cold vs warm encode + rank through the content-hash store, as ``scripts/bench_retrieval.py``'s dense
   part does (fresh temporary cache dir; warm = a new Store on the same dir, in-memory rows dropped), plus a
   rank-only cold vs warm run of the BM25 rankings table. Goal >= 10x.
4. Scaling with users: ``benchmark.perf.scaling`` (real runner subprocesses, fresh caches, peak RSS, fitted
   per-user marginal cost, a plot). The report (goals, PASS/MISS, markdown): ``benchmark.perf.report``.

``--quick`` runs every section on tiny sizes and a synthetic pack only (a smoke test: about a minute on an idle
machine); it never writes ``results/perf.md``. ``--dry-run`` prints the scaling points and runs nothing. Extra
``key=value`` arguments are config overrides for the generation section and every scaling run (e.g.
``backbone.id=<path>`` in tests; the dense cache figure uses ``scripts/bench_retrieval.py``'s own embedder, the
default one). The report (``.md``, ``.json`` with every raw number, ``.png``, side by side) is written atomically
after every section and scaling point, with the command, the commit and dirty flag, the dates and the host's load
average before and after; a section that fails is reported as such and the exit code is 1.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import statistics
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmark.runs import provenance as runs
from benchmark.perf.report import figures, write_report
from benchmark.perf.scaling import short

REPO = runs.REPO
DEFAULT_OUT = REPO / "results" / "perf.md"
SECTIONS = ("gen", "bm25", "cache", "scaling")


# ---------------------------------------------------------------------------------------------- 1. generation
def plain_generate(model, tokenizer, prompts: Sequence[str], *, batch_size: int, max_new_tokens: int,
                   num_beams: int, max_input_tokens: int, chat: bool) -> list[str]:
    """What a user writes with transformers alone, in the given order (no sorting), left-padded."""
    import torch

    texts = []
    for p in prompts:
        ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        if len(ids) > max_input_tokens:      # the suite's input budget, applied to the raw text the same way
            p = tokenizer.decode(ids[:max_input_tokens], skip_special_tokens=True)
        texts.append(tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) if chat else p)
    side, out = tokenizer.padding_side, []
    tokenizer.padding_side = "left"
    try:
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(texts[s:s + batch_size], return_tensors="pt", padding=True, add_special_tokens=not chat)
            ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
            with torch.no_grad():
                seqs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      do_sample=False, num_beams=num_beams, pad_token_id=tokenizer.pad_token_id)
            new = seqs if model.config.is_encoder_decoder else seqs[:, ids.shape[1]:]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return out


def compare_generation(ctx, prompts: Sequence[str], repeats: int = 3, log=print) -> dict[str, Any]:
    """Suite vs plain loop on ``prompts`` with ``ctx``'s backbone and decoding; alternating, best and median."""
    lm = ctx.lm
    if ctx.spec.kind != "generation":
        raise ValueError(f"perf generation: {ctx.spec.name} is a label task; pick a generation task (LaMP_4-7)")
    settings = {"batch_size": lm.generate_batch_size, "max_new_tokens": lm.max_new_tokens,
                "num_beams": int(lm.decoding.get("num_beams") or 1), "max_input_tokens": lm.max_input_tokens,
                "chat": lm.use_chat}
    sides: dict[str, Callable[[Sequence[str]], list[str]]] = {
        "suite": lambda ps: lm.answer(list(ps))[0],
        "plain": lambda ps: plain_generate(lm.model, lm.tokenizer, ps, **settings)}
    for fn in sides.values():          # warm-up: first-call allocations are paid by neither measured pass
        fn(prompts[:2])
    times: dict[str, list[float]] = {"suite": [], "plain": []}
    outputs: dict[str, list[str]] = {}
    for r in range(repeats):
        for name in (("suite", "plain") if r % 2 == 0 else ("plain", "suite")):
            t0 = time.perf_counter()
            outputs[name] = sides[name](prompts)
            times[name].append(time.perf_counter() - t0)
        log(f"[perf] generation repeat {r + 1}/{repeats}: suite {times['suite'][-1]:.2f} s, "
            f"plain {times['plain'][-1]:.2f} s")
    n = len(prompts)
    diff = [i for i, (a, b) in enumerate(zip(outputs["suite"], outputs["plain"])) if a != b]
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"task": ctx.spec.name, "prompts": n, "repeats": repeats, "backbone": lm.ident.get("id"),
            **settings, "times_s": times, "suite_ex_per_s": n / best["suite"], "plain_ex_per_s": n / best["plain"],
            "ratio": best["plain"] / best["suite"], "ratio_median": med["plain"] / med["suite"],
            "mismatches": len(diff), "identical": not diff,
            "mismatch_examples": [{"i": i, "suite": outputs["suite"][i], "plain": outputs["plain"][i]}
                                  for i in diff[:3]]}


def generation_section(task: str, n_prompts: int, repeats: int, *, data: str, profile: str,
                       overrides: Sequence[str], log=print) -> dict[str, Any]:
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context
    from benchmark.data.reader import read_split
    from benchmark.data.datamodule import seeded_subset
    from benchmark.data.sources import resolve_source

    cfg = compose(task, "zeroshot", [f"data.source={data}", *overrides], profile=profile)
    ctx = Context(cfg)
    root = resolve_source(data, cfg.data, spec=ctx.spec, cache_dir=cfg.run.cache_dir, seed=int(cfg.seed)).root
    examples = read_split(root, ctx.spec, str(cfg.data.eval_split)).examples
    prompts = [ex.input for ex in seeded_subset(examples, n_prompts, int(cfg.seed), "eval")]
    log(f"[perf] generation: {len(prompts)} {task} {cfg.data.eval_split} prompts from {root}")
    return {**compare_generation(ctx, prompts, repeats, log=log), "data": short(root), "profile": profile}


# ---------------------------------------------------------------------------------------------- 2-3. retrieval
@lru_cache(maxsize=1)
def bench_retrieval():
    """``scripts/bench_retrieval.py`` as a module: its measurements are the ones reported here (one copy)."""
    path = REPO / "scripts" / "bench_retrieval.py"
    spec = importlib.util.spec_from_file_location("bench_retrieval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def bm25_section(root: Path, task: str, repeats: int) -> dict[str, Any]:
    br = bench_retrieval()
    largest = br.largest_task(root)
    return {**br.bench_bm25(root, largest if task == "largest" else task, repeats), "largest": largest,
            "root": short(root), "repeats": repeats}


def bm25_rank_cache(root: Path, task: str, repeats: int) -> dict[str, Any]:
    """Rank-only cold vs warm of the BM25 rankings table (every question of every split), fresh temp dir."""
    import shutil

    from benchmark.retrieval.rankers import BM25Ranker
    from benchmark.retrieval.table import forget_tables
    from benchmark.data.tasks import load_task

    spec, exs = load_task(task), bench_retrieval().load_examples(root, task)
    tmp = Path(tempfile.mkdtemp(prefix="perf-bm25-cache-"))
    try:
        def run() -> tuple[float, dict]:
            return bench_retrieval().timed_rank(tmp, spec, exs, lambda store: BM25Ranker())
        cold, cold_stats = run()
        warm, warm_stats = min((run() for _ in range(repeats)), key=lambda r: r[0])
    finally:
        forget_tables()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"task": task, "questions": len(exs), "cold_s": cold, "warm_s": warm, "speedup": cold / warm,
            "cold": cold_stats, "warm": warm_stats}


def cache_section(root: Path, task: str, repeats: int) -> dict[str, Any]:
    return {"dense": bench_retrieval().bench_dense(root, task, repeats), "bm25": bm25_rank_cache(root, task, repeats),
            "root": short(root), "repeats": repeats}


# ---------------------------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, synthetic data only (a smoke test)")
    ap.add_argument("--out", type=Path, default=None, help="report path (.md; .json and .png beside it); "
                    "default results/perf.md, with --quick results/_scratch/perf-quick.md")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " + ", ".join(SECTIONS))
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--gen-task", default="LaMP_7")
    ap.add_argument("--gen-prompts", type=int, default=64)
    ap.add_argument("--gen-repeats", type=int, default=4)
    ap.add_argument("--bm25-task", default="largest", help="largest (most profile items) or a task name")
    ap.add_argument("--cache-task", default="LaMP_2", help="task of the cold/warm cache figure (LaMP_7 cold is ~10 min)")
    ap.add_argument("--repeats", type=int, default=3, help="BM25 and cache repeats (best of)")
    ap.add_argument("--scaling-task", default="LaMP_2")
    ap.add_argument("--methods", default="zeroshot,bm25,pplug,oppu")
    ap.add_argument("--mini-sizes", default="10,100,all", help="evaluated users on the mini pack ('' = none)")
    ap.add_argument("--synthetic-sizes", default="10,100,1000", help="evaluated users on the synthetic pack")
    ap.add_argument("--max-users", default="oppu=30,pplug=100", help="per-method caps: sizes above run once at the cap")
    ap.add_argument("--point-timeout", type=float, default=3600.0, help="seconds before a scaling point is killed")
    ap.add_argument("--scratch", type=Path, default=REPO / "results" / "_scratch" / "perf")
    ap.add_argument("--dry-run", action="store_true", help="print the sections and scaling points, run nothing")
    ap.add_argument("overrides", nargs="*", help="config overrides key=value for every model-loading section")
    a = ap.parse_args(argv)
    if a.quick:   # quick values for every flag left at its default (explicit flags win)
        for key, value in (("gen_prompts", 8), ("gen_repeats", 2), ("repeats", 1), ("methods", "zeroshot"),
                           ("mini_sizes", ""), ("synthetic_sizes", "2,3"), ("point_timeout", 300.0)):
            if getattr(a, key) == ap.get_default(key):
                setattr(a, key, value)
    a.out = (a.out or (REPO / "results" / "_scratch" / "perf-quick.md" if a.quick else DEFAULT_OUT)).resolve()
    if a.quick and a.out == DEFAULT_OUT.resolve():
        ap.error("--quick never writes results/perf.md (it is not a measurement); pick another --out")
    bad = set(a.sections.split(",")) - set(SECTIONS)
    if bad:
        ap.error(f"unknown sections {sorted(bad)}; known: {', '.join(SECTIONS)}")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    from benchmark.runs.config import compose
    from benchmark.perf.scaling import parse_caps, scaling_section, synthetic_pack
    from benchmark.data.sources import mini_root

    t0, load_before, sections = time.perf_counter(), os.getloadavg(), a.sections.split(",")
    mini = mini_root(compose("LaMP_2", "zeroshot", [], profile=a.profile).data)
    a.scratch.mkdir(parents=True, exist_ok=True)
    rep: dict[str, Any] = {"command": " ".join(["python -m benchmark.perf.suite", *map(shlex.quote, argv)]),
                           "via": "make perf" if os.environ.get("MAKELEVEL") else None,
                           "git": runs.git_state(), "started": runs.now_iso(), "quick": a.quick, "profile": a.profile,
                           "args": {k: str(v) for k, v in vars(a).items()}, "not_run": {}, "errors": {}}
    if a.dry_run:
        return dry_run(a, sections, mini)
    if a.quick or mini is None:   # sections 1-3 read a pack from disk: a small synthetic one without the mini pack
        root = synthetic_pack(a.scratch, 8)
        data = str(root)
        if mini is None and not a.quick:
            rep["not_run"]["mini pack"] = "not found: sections 1-3 ran on a synthetic pack (8 users)"
    else:
        root, data = mini, "mini"

    def save(final: bool = False) -> None:
        """The report so far (atomic), after every section and scaling point: an interrupted run keeps its figures."""
        rep["figures"] = figures(rep)
        rep["host"] = runs.host_info()
        rep["load_before"], rep["load_after"] = list(load_before), list(os.getloadavg())
        rep["finished"] = runs.now_iso() if final else "(in progress)"
        rep["elapsed_s"] = time.perf_counter() - t0
        write_report(rep, a.out)

    def scaling() -> dict[str, Any]:
        return scaling_section(task=a.scaling_task, methods=a.methods.split(","), sizes=_sizes(a),
                               caps=parse_caps(a.max_users), profile=a.profile, overrides=a.overrides,
                               scratch=a.scratch, mini_root=mini, png=a.out.with_suffix(".png"),
                               timeout_s=a.point_timeout, progress=lambda part: (rep.update(scaling=part), save()))
    steps = {"gen": ("generation", lambda: generation_section(a.gen_task, a.gen_prompts, a.gen_repeats, data=data,
                                                               profile=a.profile, overrides=a.overrides)),
             "bm25": ("bm25", lambda: bm25_section(root, a.bm25_task, a.repeats)),
             "cache": ("caches", lambda: cache_section(root, a.cache_task, a.repeats)),
             "scaling": ("scaling", scaling)}
    for name, (key, run) in steps.items():
        if name not in sections:
            rep["not_run"][name] = "not in --sections"
            continue
        print(f"[perf] section {name} (data {short(root)}), {(time.perf_counter() - t0) / 60:.1f} min in", flush=True)
        try:
            rep[key] = run()
        except Exception as e:  # noqa: BLE001 - an hour-long run keeps its other figures; the reason is reported
            import traceback
            rep["errors"][name] = f"{type(e).__name__}: {e}"
            print(f"[perf] section {name} FAILED: {traceback.format_exc(limit=6)}", file=sys.stderr, flush=True)
        save()
    save(final=True)
    print(f"[perf] wrote {a.out} ({rep['elapsed_s'] / 60:.1f} min)", flush=True)
    for f in rep["figures"]:
        verdict = "info" if f["pass"] is None else "PASS" if f["pass"] else "MISS"
        goal = "no goal" if f["goal"] is None else f"goal {f['goal']:g}x"
        print(f"  {verdict} {f['what']}: {f['value']:.2f}x ({goal})")
    return 1 if rep["errors"] else 0



def _sizes(a: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("mini", a.mini_sizes), ("synthetic", a.synthetic_sizes)) if v.strip()}


def dry_run(a: argparse.Namespace, sections: list[str], mini: Path | None) -> int:
    from benchmark.perf.scaling import parse_caps, resolve_plan

    print(f"sections: {', '.join(sections)}; report: {short(a.out)}")
    if "scaling" in sections:
        pl = resolve_plan(task=a.scaling_task, methods=a.methods.split(","), sizes=_sizes(a),
                          caps=parse_caps(a.max_users), scratch=a.scratch, mini_root=mini)
        print(f"scaling on {a.scaling_task}: {len(pl['points'])} points")
        for p in pl["points"]:
            print(f"  run  {p.source:9} {p.method:9} {p.users:5} users ({p.label})")
        for s in pl["skipped"]:
            print(f"  skip {s['source']:9} {s['method']:9} {s['users']:5} users: {s['reason']}")
        for n in pl["notes"]:
            print(f"  note {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
