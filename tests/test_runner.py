"""The grid end to end on the synthetic pack with tiny models: rows, run folders, resume, failures, kills."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.runs import provenance as runs
from benchmark.runs.runner import main

REPO = Path(__file__).resolve().parent.parent


def _rows(results: Path) -> list[dict]:
    return list(runs.read_rows(results / "runs.jsonl"))


def test_zeroshot_end_to_end_on_synthetic(tiny_backbone_dir, tiny_overrides, tmp_path):
    over = tiny_overrides(tiny_backbone_dir)
    assert main(["--tasks", "LaMP_2,LaMP_3,LaMP_4", "--methods", "zeroshot", "--profile", "test", *over]) == 0
    rows = _rows(tmp_path / "results")
    assert [r["task"] for r in rows] == ["LaMP_2", "LaMP_3", "LaMP_4"]
    for row in rows:
        assert row["status"] == "finished" and row["method"] == "zeroshot" and row["n"] > 0
        assert row["data"]["source"] == "synthetic" and len(row["data"]["digest"]) == 64
        assert row["git"]["commit"] and "dirty" in row["git"] and row["packages"]["torch"]
        assert row["backbone"]["kind"] in ("causal", "seq2seq") and row["seed"] == 0
        assert len(row["config_hash"]) == 64 and row["profile"] == "test"
        for m in row["metrics"].values():
            assert m["ci95"][0] <= m["value"] <= m["ci95"][1]
        run_dir = tmp_path / "results" / "runs" / row["run_id"]
        preds = json.loads((run_dir / "predictions.json").read_text())
        assert preds["task"] == row["task"] and len(preds["golds"]) == row["n"]
        samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == row["n"] and {"id", "user_id", "prompt_sha256", "output", "gold", "scores"} <= set(samples[0])
        assert (run_dir / "config.yaml").exists()
    # the official scorer CLI reproduces the row from the saved predictions
    row = rows[1]
    run_dir = tmp_path / "results" / "runs" / row["run_id"]
    gold = run_dir / "golds.json"
    out = subprocess.run([sys.executable, "-m", "benchmark.scoring.score", "--golds_json", str(gold), "--preds_json",
                          str(run_dir / "predictions.json"),
                          "--task_name", row["task"]], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["MAE"] == pytest.approx(row["metrics"]["MAE"]["value"])


def test_run_writes_nothing_and_record_writes_the_outcome(tiny_causal_dir, tiny_overrides, tmp_path):
    """``run`` is pure (fit, predict, score); ``record`` turns its Outcome into the run folder and the row."""
    from benchmark.runs.config import compose
    from benchmark.runs.experiment import record, run

    cfg = compose("LaMP_2", "global_majority", tiny_overrides(tiny_causal_dir), profile="test")
    out = run(cfg)
    assert not (tmp_path / "results").exists()
    assert len(out.prediction.outputs) == len(out.examples) == len(out.per_example) > 0
    assert set(out.aggregates) == {"accuracy", "f1"} and out.loaded == {}      # LLM-free: no model loaded
    row = record(out, tmp_path / "results", {"commit": "abc", "dirty": False})
    assert _rows(tmp_path / "results") == [json.loads(json.dumps(row, default=str))]
    samples = (tmp_path / "results" / row["samples"]).read_text().splitlines()
    assert [json.loads(x)["output"] for x in samples] == out.prediction.outputs


def test_same_seed_same_predictions_and_resume_skips(tiny_causal_dir, tiny_overrides, tmp_path, capsys):
    over = tiny_overrides(tiny_causal_dir, "decoding.answer_mode=generate")
    args = ["--tasks", "LaMP_2", "--methods", "zeroshot", "--profile", "test", *over]
    assert main(args) == 0
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert len(_rows(tmp_path / "results")) == 1
    assert main([*args, "--force"]) == 0
    rows = _rows(tmp_path / "results")
    assert len(rows) == 2
    outs = [[json.loads(x)["output"] for x in (tmp_path / "results" / r["samples"]).read_text().splitlines()]
            for r in rows]
    assert outs[0] == outs[1]


def test_a_failing_run_does_not_stop_the_grid(tiny_causal_dir, tiny_overrides, tmp_path, monkeypatch):
    from baselines.zeroshot import ZeroShot

    calls = {"n": 0}
    real = ZeroShot.predict

    def flaky(self, examples):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom on purpose")
        return real(self, examples)

    monkeypatch.setattr(ZeroShot, "predict", flaky)
    code = main(["--tasks", "LaMP_1,LaMP_2", "--methods", "zeroshot", "--profile", "test",
                 *tiny_overrides(tiny_causal_dir)])
    assert code == 1
    rows = _rows(tmp_path / "results")
    assert [r["status"] for r in rows] == ["failed", "finished"]
    assert "boom on purpose" in rows[0]["reason"]


def test_kill_mid_run_leaves_finished_rows_intact(tiny_causal_dir, tiny_overrides, tmp_path):
    """SIGKILL while the second run predicts: the first row stays whole, no partial row, the file parses."""
    over = tiny_overrides(tiny_causal_dir)
    script = textwrap.dedent(f"""
        import sys, time
        from baselines.zeroshot import ZeroShot
        real = ZeroShot.predict
        n = {{"k": 0}}
        def slow(self, ex):
            n["k"] += 1
            if n["k"] == 2:
                print("SECOND", flush=True); time.sleep(60)
            return real(self, ex)
        ZeroShot.predict = slow
        from benchmark.runs.runner import main
        sys.exit(main({["--tasks", "LaMP_1,LaMP_2", "--methods", "zeroshot", "--profile", "test", *over]!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if "SECOND" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    text = (tmp_path / "results" / "runs.jsonl").read_text()
    assert text.endswith("\n")
    rows = [json.loads(x) for x in text.splitlines()]
    assert [(r["task"], r["status"]) for r in rows] == [("LaMP_1", "finished")]
    assert not list((tmp_path / "results" / "runs").rglob("*.tmp"))


def test_unknown_method_fails_before_running(capsys):
    assert main(["--tasks", "LaMP_1", "--methods", "zeroshto"]) == 2
    assert "Did you mean" in capsys.readouterr().err
