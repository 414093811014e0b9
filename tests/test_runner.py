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


def test_an_empty_eval_split_fails_naming_the_file_and_writes_no_row(tiny_causal_dir, tiny_overrides, tmp_path,
                                                                     capsys):
    root = tmp_path / "pack" / "LaMP_2"
    root.mkdir(parents=True)
    (root / "train_questions.json").write_text(json.dumps([{"id": "t1", "input": "x", "profile": [], "user_id": "u"}]))
    (root / "train_outputs.json").write_text(json.dumps({"task": "LaMP_2", "golds": [{"id": "t1", "output": "comedy"}]}))
    (root / "dev_questions.json").write_text("[]")
    (root / "dev_outputs.json").write_text(json.dumps({"task": "LaMP_2", "golds": []}))
    code = main(["--tasks", "LaMP_2", "--methods", "zeroshot", "--profile", "test",
                 *tiny_overrides(tiny_causal_dir, f"data.source={tmp_path / 'pack'}")])
    assert code == 1
    assert str(root / "dev_questions.json") in capsys.readouterr().out
    assert not (tmp_path / "results" / "runs.jsonl").exists()


def test_methods_predict_without_golds(tiny_causal_dir, tiny_overrides, tmp_path, monkeypatch):
    """The method sees its eval examples with ``gold=None``; the scorer still scores against the data's golds."""
    from baselines.zeroshot import ZeroShot

    seen = []
    real = ZeroShot.predict

    def spy(self, examples):
        seen.extend(ex.gold for ex in examples)
        return real(self, examples)

    monkeypatch.setattr(ZeroShot, "predict", spy)
    assert main(["--tasks", "LaMP_2", "--methods", "zeroshot", "--profile", "test",
                 *tiny_overrides(tiny_causal_dir)]) == 0
    row = _rows(tmp_path / "results")[0]
    samples = [json.loads(x) for x in (tmp_path / "results" / row["samples"]).read_text().splitlines()]
    assert seen and all(g is None for g in seen)
    assert all(s["gold"] is not None for s in samples) and len(samples) == row["n"]


def test_unknown_method_fails_before_running(capsys):
    assert main(["--tasks", "LaMP_1", "--methods", "zeroshto"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_results_only_commits_keep_the_code_key(tmp_path):
    """A row's code key hashes the tracked code paths: committing results or docs keeps it; touching code
    (uncommitted or committed) changes it; rows from before the key existed fall back to their commit."""
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "t@t"); git("config", "user.name", "t")
    (tmp_path / "results").mkdir()
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "code.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("docs\n")
    (tmp_path / "results" / "runs.jsonl").write_text("")
    git("add", "."); git("commit", "-qm", "code")
    first = runs.git_state(tmp_path)
    (tmp_path / "results" / "runs.jsonl").write_text('{"row": 1}\n')
    assert runs.git_state(tmp_path)["source_tree"] == first["source_tree"] and not runs.git_state(tmp_path)["dirty"]
    (tmp_path / "README.md").write_text("more docs\n")
    git("commit", "-qam", "results and docs")
    after = runs.git_state(tmp_path)
    assert after["commit"] != first["commit"] and runs.code_key(after) == runs.code_key(first)
    (tmp_path / "benchmark" / "code.py").write_text("x = 2\n")
    dirty = runs.git_state(tmp_path)
    assert dirty["dirty"] and runs.code_key(dirty) != runs.code_key(first)
    git("commit", "-qam", "code change")                 # committing the dirty tree as it was keeps its key
    assert runs.code_key(runs.git_state(tmp_path)) == runs.code_key(dirty) != runs.code_key(first)
    assert runs.code_key({"commit": "abc"}) == "commit:abc"


def test_rows_record_the_method_cap_and_the_choice_normalisation(tiny_causal_dir, tiny_overrides, tmp_path):
    over = tiny_overrides(tiny_causal_dir, "data.limit=6", "decoding.answer_mode=choice")
    assert main(["--tasks", "LaMP_2", "--methods", "zeroshot", "--profile", "test", *over]) == 0
    assert main(["--tasks", "LaMP_2", "--methods", "zeroshot", "--profile", "test", *over,
                 "data.method_limit=3", "decoding.choice_norm=byte"]) == 0
    full, capped = _rows(tmp_path / "results")
    assert (full["n"], full["data"]["method_limit"], full["choice_norm"]) == (6, None, "sum")
    assert (capped["n"], capped["data"]["method_limit"], capped["choice_norm"]) == (3, 3, "byte")
    ids = [{json.loads(x)["id"] for x in (tmp_path / "results" / r["samples"]).read_text().splitlines()}
           for r in (full, capped)]
    assert ids[1] < ids[0]                                         # a nested subset of the same sample
