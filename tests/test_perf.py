"""`make perf` (benchmark/perf/suite.py, scaling.py, report.py): each piece on tiny random models and the synthetic
pack, and the whole `--quick` path once (embedded embedder for the dense cache figure)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.perf import suite as perf, scaling as perf_scaling

REPO = Path(__file__).resolve().parent.parent


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.parametrize("batch", [2, 16])
def test_generation_suite_and_plain_loop_agree(tiny_backbone_dir, tiny_overrides, batch):
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context
    from benchmark.data.synthetic import build_task
    from benchmark.data.tasks import load_task

    cfg = compose("LaMP_7", "zeroshot", tiny_overrides(tiny_backbone_dir, f"backbone.generate_batch_size={batch}",
                                                       "backbone.max_input_tokens=12"), profile="test")
    ctx = Context(cfg)
    prompts = [q["input"] for q in build_task(load_task("LaMP_7"), 0, 7)["dev_questions.json"]]
    prompts[2] = prompts[2] + " and more words" * 8          # longer than the input budget: truncated on both sides
    side = ctx.lm.tokenizer.padding_side
    g = perf.compare_generation(ctx, prompts, repeats=2, log=lambda _: None)
    assert g["identical"] and g["mismatches"] == 0, g["mismatch_examples"]
    assert g["prompts"] == 7 and g["batch_size"] == batch and g["max_new_tokens"] == 6
    assert all(len(g["times_s"][s]) == 2 for s in ("suite", "plain"))
    assert _positive(g["ratio"]) and _positive(g["ratio_median"]) and _positive(g["suite_ex_per_s"])
    assert ctx.lm.tokenizer.padding_side == side                              # the shared tokenizer is restored
    assert ctx.lm.n_truncated > 0                                             # the budget did cut a prompt
    plain = perf.plain_generate(ctx.lm.model, ctx.lm.tokenizer, prompts, batch_size=batch, max_new_tokens=6,
                                num_beams=1, max_input_tokens=12, chat=ctx.lm.use_chat)
    assert plain == ctx.lm.answer(prompts)[0]
    assert any(plain) or ctx.lm.kind == "seq2seq"     # the random T5 tends to emit special tokens only (decoded "")


def test_generation_counts_mismatches(tiny_causal_dir, tiny_overrides, monkeypatch):
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context

    ctx = Context(compose("LaMP_7", "zeroshot", tiny_overrides(tiny_causal_dir), profile="test"))
    real = perf.plain_generate
    monkeypatch.setattr(perf, "plain_generate", lambda *a, **kw: [t + " x" for t in real(*a, **kw)])
    g = perf.compare_generation(ctx, ["tweet one about music", "a tweet on the river"], repeats=1,
                                log=lambda _: None)
    assert not g["identical"] and g["mismatches"] == 2 and g["mismatch_examples"][0]["plain"].endswith(" x")


def test_generation_refuses_a_label_task(tiny_causal_dir, tiny_overrides):
    from benchmark.runs.config import compose
    from benchmark.contract.context import Context

    ctx = Context(compose("LaMP_2", "zeroshot", tiny_overrides(tiny_causal_dir), profile="test"))
    with pytest.raises(ValueError, match="generation task"):
        perf.compare_generation(ctx, ["a", "b"], repeats=1)


# ---------------------------------------------------------------------------------------------- retrieval figures
def test_bm25_and_rank_cache_figures_on_synthetic(tmp_path):
    root = perf_scaling.synthetic_pack(tmp_path, 5)
    b = perf.bm25_section(root, "largest", repeats=1)
    assert b["task"] == b["largest"] and b["questions"] > 0 and b["items"] > 0
    assert b["top1_mismatch"] == b["top4_mismatch"] == b["full_mismatch"] == 0
    assert _positive(b["speedup"]) and _positive(b["rank_bm25_s"]) and _positive(b["ours_s"])
    c = perf.bm25_rank_cache(root, "LaMP_2", repeats=2)
    assert c["cold"]["rankings"] == {"hits": 0, "misses": c["questions"]}
    assert c["warm"]["rankings"] == {"hits": c["questions"], "misses": 0}  # the warm run computed nothing
    assert _positive(c["speedup"])


# ---------------------------------------------------------------------------------------------- scaling pieces
def test_sizes_caps_and_plan():
    assert perf_scaling.parse_sizes("10,100,all", 126) == [(10, "10"), (100, "100"), (126, "all")]
    assert perf_scaling.parse_sizes("10,200,all", 126) == [(10, "10"), (126, "200->126 (all)")]
    with pytest.raises(ValueError):
        perf_scaling.parse_sizes("0", 5)
    assert perf_scaling.parse_caps("oppu=30, pplug=1000") == {"oppu": 30, "pplug": 1000}
    points, skipped = perf_scaling.plan(["zeroshot", "oppu"], {"synthetic": [(10, "10"), (100, "100"), (1000, "1000")]},
                                        {"oppu": 30})
    assert [(p.method, p.users) for p in points] == [("zeroshot", 10), ("zeroshot", 100), ("zeroshot", 1000),
                                                     ("oppu", 10), ("oppu", 30)]
    assert [(s["method"], s["users"]) for s in skipped] == [("oppu", 100), ("oppu", 1000)]
    assert all("--max-users oppu=30" in s["reason"] for s in skipped)


def test_least_squares_slope_is_the_per_user_cost():
    fit = perf_scaling.fit_line([10, 100, 1000], [25.0, 70.0, 520.0])   # 20 s fixed + 0.5 s per user
    assert fit["slope"] == pytest.approx(0.5) and fit["intercept"] == pytest.approx(20.0) and fit["r2"] == pytest.approx(1.0)
    assert perf_scaling.fit_line([10, 10], [1.0, 2.0]) is None
    rows = [{"source": "synthetic", "method": "m", "users": n, "wall_s": 20 + 0.5 * n, "peak_rss_mb": 500 + n}
            for n in (10, 100)] + [{"source": "synthetic", "method": "m", "users": 1000, "wall_s": 1.0,
                                    "peak_rss_mb": 1.0, "error": "exit code 1"}]
    (f,) = perf_scaling.fits(rows)
    assert f["points"] == 2 and f["s_per_user"] == pytest.approx(0.5) and f["mb_per_user"] == pytest.approx(1.0)


@pytest.mark.slow
def test_a_scaling_point_is_a_real_run_in_a_subprocess(tiny_causal_dir, tiny_embedder_dir, tmp_path):
    root = perf_scaling.synthetic_pack(tmp_path, 4, ["LaMP_2"])
    over = [f"backbone.id={tiny_causal_dir}", f"embedder.id={tiny_embedder_dir}", "backbone.threads=1"]
    pt = perf_scaling.Point("synthetic", "bm25", 3, "3")
    r = perf_scaling.run_point(pt, task="LaMP_2", data=str(root), profile="test", overrides=over, scratch=tmp_path,
                               timeout_s=300, log=lambda _: None)
    assert "error" not in r, r.get("log_tail")
    assert r["rc"] == 0 and r["users"] == 3 and r["n"] == 3
    assert _positive(r["wall_s"]) and _positive(r["cpu_s"]) and r["peak_rss_mb"] > 50   # python + torch at least
    if sys.platform == "linux":
        assert r["peak_rss_source"] == "VmHWM"          # the child's own peak, not the parent's RSS at fork
    assert r["command"].startswith("python -m benchmark.runs.runner --tasks LaMP_2 --methods bm25")
    assert r["wall_s"] >= r["run_total_s"]
    point_dir = tmp_path / "points" / pt.slug
    assert not (point_dir / "cache").exists()                        # the cold cache is dropped afterwards
    rows = [json.loads(x) for x in (point_dir / "results" / "runs.jsonl").read_text().splitlines()]
    assert [(x["method"], x["variant"]) for x in rows] == [("bm25", "k=1")]   # the sweep pinned to one run

    big = bytearray(600 * 2**20)                         # this process grows by 600 MB: the child must not see it
    big[::4096] = b"\x01" * len(big[::4096])
    again = perf_scaling.run_point(pt, task="LaMP_2", data=str(root), profile="test", overrides=over,
                                   scratch=tmp_path, timeout_s=300, log=lambda _: None)
    del big
    assert "error" not in again and again["peak_rss_mb"] < r["peak_rss_mb"] + 300
    bad = perf_scaling.run_point(pt, task="LaMP_2", data=str(tmp_path / "nowhere"), profile="test", overrides=over,
                                 scratch=tmp_path, timeout_s=300, log=lambda _: None)
    assert bad["rc"] != 0 and "error" in bad


# ---------------------------------------------------------------------------------------------- the whole tool
def test_quick_never_writes_the_real_report():
    with pytest.raises(SystemExit):
        perf.parse_args(["--quick", "--out", str(REPO / "results" / "perf.md")])
    a = perf.parse_args(["--quick"])
    assert a.out != perf.DEFAULT_OUT.resolve() and a.mini_sizes == "" and a.synthetic_sizes == "2,3"
    assert perf.parse_args(["--quick", "--gen-prompts", "5"]).gen_prompts == 5     # explicit flags win


def test_dry_run_lists_the_points_and_runs_nothing(tmp_path, capsys):
    assert perf.main(["--dry-run", "--sections", "scaling", "--methods", "zeroshot,oppu", "--mini-sizes", "",
                      "--synthetic-sizes", "10,100", "--max-users", "oppu=20", "--scratch", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 points" in out and "skip synthetic oppu        100 users" in out and "20 users (20 (cap))" in out
    assert not (tmp_path / "points").exists()                      # nothing ran


def test_a_failing_section_is_reported_and_the_exit_code_says_so(tmp_path):
    out = tmp_path / "perf.md"
    rc = perf.main(["--quick", "--sections", "bm25,cache", "--bm25-task", "LaMP_99", "--cache-task", "LaMP_98",
                    "--out", str(out), "--scratch", str(tmp_path / "scratch")])
    assert rc == 1
    rep = json.loads(out.with_suffix(".json").read_text())
    assert set(rep["errors"]) == {"bm25", "cache"} and rep["figures"] == []
    assert {"gen", "scaling"} <= set(rep["not_run"]) and rep["finished"] != "(in progress)"
    md = out.read_text()
    assert "bm25: FAILED" in md and "gen: not in --sections" in md


@pytest.mark.slow
@pytest.mark.embedded     # the dense cache figure uses scripts/bench_retrieval.py's embedder: the embedded MiniLM
def test_quick_run_writes_a_complete_report(tiny_causal_dir, tiny_embedder_dir, tmp_path):
    out = tmp_path / "report" / "perf.md"
    argv = ["--quick", "--out", str(out), "--scratch", str(tmp_path / "scratch"), "--profile", "test",
            f"backbone.id={tiny_causal_dir}", f"embedder.id={tiny_embedder_dir}", "backbone.threads=1"]
    assert perf.main(argv) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep["quick"] and rep["git"]["commit"] and len(rep["load_before"]) == len(rep["load_after"]) == 3
    assert [f["id"] for f in rep["figures"]] == ["generation", "bm25", "dense_cache", "bm25_cache"]
    for f in rep["figures"]:
        assert _positive(f["value"])
        assert f["pass"] == (None if f["goal"] is None else f["value"] >= f["goal"])
    assert rep["generation"]["identical"] and rep["bm25"]["full_mismatch"] == 0
    sc = rep["scaling"]
    assert [(p["method"], p["users"]) for p in sc["points"]] == [("zeroshot", 2), ("zeroshot", 3)]
    assert not sc["failed"] and all(_positive(p["wall_s"]) and _positive(p["peak_rss_mb"]) for p in sc["points"])
    assert sc["fits"][0]["points"] == 2 and sc["fits"][0]["s_per_user"] is not None
    md = out.read_text()
    for needle in ("QUICK run", "* command: `python -m benchmark.perf.suite --quick", rep["git"]["commit"], "load average",
                   "| figure | measured | goal | result |", "](perf.png)", "](perf.json)", "per-user marginal cost"):
        assert needle in md, needle
    for f in rep["figures"]:  # each headline ratio has its row, judged against its goal (or "info" without one)
        word = "info" if f["goal"] is None else "PASS" if f["pass"] else "MISS"
        assert f"| {f['what']} | {f['value']:.2f}x | " in md and f" | {word} | " in md, f["id"]
