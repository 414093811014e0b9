"""benchmark.scoring.score: the eval_task.py-compatible CLI (success, every input check, exit code 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.scoring.score import main

ROOT = Path(__file__).resolve().parent.parent


def _write(path: Path, task: str, pairs) -> Path:
    path.write_text(json.dumps({"task": task, "golds": [{"id": i, "output": o} for i, o in pairs]}))
    return path


@pytest.fixture
def golds(tmp_path):
    return _write(tmp_path / "dev_outputs.json", "LaMP_2", [("1", "comedy"), ("2", "comedy"), ("3", "dystopia")])


def _run(capsys, golds, preds, task="LaMP_2", extra=()):
    rc = main(["--golds_json", str(golds), "--preds_json", str(preds), "--task_name", task, *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_success_reorders_by_id_and_writes_output(tmp_path, golds, capsys):
    preds = _write(tmp_path / "p.json", "LaMP_2", [("3", "sci-fi"), ("1", " comedy "), ("2", "Comedy")])
    out_file = tmp_path / "sub" / "scores.json"
    rc, out, err = _run(capsys, golds, preds, extra=["--output_file", str(out_file)])
    assert rc == 0 and err == ""
    expected = {"accuracy": pytest.approx(1 / 3), "f1": pytest.approx(2 / 45), "n": 3, "n_unparsable": 1}
    assert json.loads(out) == expected
    assert json.loads(out_file.read_text()) == expected


def test_task_mismatch(tmp_path, golds, capsys):
    preds = _write(tmp_path / "p.json", "LaMP_3", [("1", "comedy"), ("2", "comedy"), ("3", "dystopia")])
    rc, out, err = _run(capsys, golds, preds)
    assert rc == 2 and out == ""
    assert str(preds) in err and "'LaMP_3'" in err and err.count("\n") == 1


def test_alias_accepted_for_old_lamp2n_files(tmp_path, capsys):
    g = _write(tmp_path / "g.json", "LaMP_2", [("a", "sports")])
    p = _write(tmp_path / "p.json", "LaMP_2N", [("a", "sports")])
    rc, out, _ = _run(capsys, g, p, task="LaMP_2N")
    assert rc == 0 and json.loads(out)["accuracy"] == 1.0


def test_id_mismatch_names_missing_and_extra(tmp_path, golds, capsys):
    preds = _write(tmp_path / "p.json", "LaMP_2", [("1", "comedy"), ("9", "comedy"), ("8", "comedy")])
    rc, _, err = _run(capsys, golds, preds)
    assert rc == 2 and str(preds) in err
    assert "2 gold id(s) missing (first: '2', '3')" in err and "2 id(s) not in the golds (first: '8', '9')" in err


def test_duplicate_ids(tmp_path, golds, capsys):
    preds = _write(tmp_path / "p.json", "LaMP_2", [("1", "comedy"), ("2", "x"), ("3", "x"), ("2", "y")])
    rc, _, err = _run(capsys, golds, preds)
    assert rc == 2 and str(preds) in err and "1 duplicate id(s): '2'" in err


@pytest.mark.parametrize("content,problem", [
    ('{"task": "LaMP_2", "golds": [', "not valid JSON"),
    ('[{"id": "1", "output": "comedy"}]', "expected an object"),
    ('{"task": "LaMP_2", "golds": [{"id": "1"}]}', 'golds[0] is not an object with "id" and "output"'),
    ('{"task": "LaMP_2", "golds": [{"id": "1", "output": null}]}', "non-text output"),
])
def test_malformed_preds(tmp_path, golds, capsys, content, problem):
    preds = tmp_path / "bad.json"
    preds.write_text(content)
    rc, out, err = _run(capsys, golds, preds)
    assert rc == 2 and out == ""
    assert err.startswith(f"benchmark.scoring.score: error: {preds}: ") and problem in err


def test_missing_file_and_unknown_task(tmp_path, golds, capsys):
    rc, _, err = _run(capsys, golds, tmp_path / "nope.json")
    assert rc == 2 and "nope.json: file not found" in err
    rc, _, err = _run(capsys, golds, golds, task="LaMP_9")
    assert rc == 2 and "unknown task 'LaMP_9'" in err


def test_gold_not_a_label_names_gold_file_and_id(tmp_path, capsys):
    g = _write(tmp_path / "g.json", "LaMP_2", [("7", "horror")])
    p = _write(tmp_path / "p.json", "LaMP_2", [("7", "comedy")])
    rc, _, err = _run(capsys, g, p)
    assert rc == 2 and str(g) in err and "id '7'" in err and "'horror'" in err


def test_module_entry_point(tmp_path, golds):
    preds = _write(tmp_path / "p.json", "LaMP_2", [("1", "comedy"), ("2", "comedy"), ("3", "dystopia")])
    proc = subprocess.run([sys.executable, "-m", "benchmark.scoring.score", "--golds_json", str(golds),
                           "--preds_json", str(preds), "--task_name", "LaMP_2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # all correct: comedy F1 1, dystopia F1 1, 13 absent labels 0 -> macro 2/15
    assert json.loads(proc.stdout) == {"accuracy": 1.0, "f1": pytest.approx(2 / 15), "n": 3, "n_unparsable": 0}
