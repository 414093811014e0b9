"""The LaMP reader (benchmark.data.reader) and the downloader (benchmark.data.download): every format error names the file,
the record and the problem; both layouts; predict-only splits; the real LaMP-mini pack; download without
internet (unreachable host, and a local HTTP server standing in for ciir.cs.umass.edu)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.data import download
from benchmark.cache.store import sha256_file
from benchmark.data.reader import LampFormatError, data_digest, read_split
from benchmark.data.tasks import load_task

LAMP2 = load_task("LaMP_2")
LAMP3 = load_task("LaMP_3")
MINI = Path(os.environ.get("LAMP_MINI", Path(__file__).resolve().parents[2] / "shared/data/lamp_mini"))
MINI_DEV_COUNTS = {"LaMP_1": 337, "LaMP_2": 126, "LaMP_3": 616, "LaMP_4": 98, "LaMP_5": 337, "LaMP_6": 50,
                   "LaMP_7": 169}


def questions() -> list[dict]:
    return [
        {"id": "20", "input": "Which tag ... description: a robot", "user_id": "u1",
         "profile": [{"id": "200", "description": "robots", "tag": "sci-fi", "date": "2001"},
                     {"id": "201", "description": "a duel", "tag": "action", "date": "2002"}]},
        {"id": "21", "input": "Which tag ... description: a joke", "user_id": "u2",
         "profile": [{"id": "210", "description": "jokes", "tag": "comedy", "date": "2003"}]},
    ]


def outputs() -> dict:
    return {"task": "LaMP_2", "golds": [{"id": "20", "output": "sci-fi"}, {"id": "21", "output": "comedy"}]}


def write(root: Path, q=None, o=None, split="dev", nested=False) -> Path:
    folder = root / "LaMP_2" / (split if nested else "")
    folder.mkdir(parents=True, exist_ok=True)
    qp = folder / f"{split}_questions.json"
    qp.write_text(q if isinstance(q, str) else json.dumps(questions() if q is None else q))
    if o is not False:
        (folder / f"{split}_outputs.json").write_text(o if isinstance(o, str) else json.dumps(outputs() if o is None else o))
    return qp


def error_of(root: Path, spec=LAMP2) -> str:
    with pytest.raises(LampFormatError) as e:
        read_split(root, spec, "dev")
    return str(e.value)


# ---------------------------------------------------------------------------------------------- valid files
@pytest.mark.parametrize("nested", [False, True])
def test_reads_both_layouts_and_joins_golds_by_id(tmp_path, nested):
    o = outputs()
    o["golds"].reverse()  # join by id, not by position
    write(tmp_path, o=o, nested=nested)
    data = read_split(tmp_path, LAMP2, "dev")
    assert [(e.id, e.user_id, e.gold) for e in data.examples] == [("20", "u1", "sci-fi"), ("21", "u2", "comedy")]
    assert data.has_outputs
    assert [p["tag"] for p in data.examples[0].profile] == ["sci-fi", "action"]  # file order kept
    sub = "LaMP_2/dev/" if nested else "LaMP_2/"
    assert set(data.files) == {f"{sub}dev_questions.json", f"{sub}dev_outputs.json"}
    qfile = tmp_path / f"{sub}dev_questions.json"
    assert data.files[f"{sub}dev_questions.json"] == hashlib.sha256(qfile.read_bytes()).hexdigest()


def test_split_without_outputs_is_predict_only(tmp_path):
    write(tmp_path, split="test", o=False)
    data = read_split(tmp_path, LAMP2, "test")
    assert not data.has_outputs and [e.gold for e in data.examples] == [None, None]
    assert list(data.files) == ["LaMP_2/test_questions.json"]


def test_int_ids_are_coerced_to_strings(tmp_path):
    q = questions()
    q[0]["id"], q[0]["profile"][0]["id"] = 20, 200
    o = outputs()
    o["golds"][0]["id"] = 20
    write(tmp_path, q=q, o=o)
    ex = read_split(tmp_path, LAMP2, "dev").examples[0]
    assert ex.id == "20" and ex.profile[0]["id"] == "200" and ex.gold == "sci-fi"


def test_missing_split_names_the_paths_tried(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"LaMP_2/dev_questions.json.*LaMP_2/dev/dev_questions.json"):
        read_split(tmp_path, LAMP2, "dev")


def test_sha256_and_digest(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 "abc"
    assert data_digest({"a": "1", "b": "2"}) == data_digest({"b": "2", "a": "1"})
    assert data_digest({"a": "1"}) != data_digest({"a": "2"})


# ---------------------------------------------------------------------------------------------- errors
def test_malformed_json_names_file_line_and_column(tmp_path):
    qp = write(tmp_path, q='[\n {"id": "20",\n  "input": oops}\n]')
    msg = error_of(tmp_path)
    assert str(qp) in msg and "line 3, column 12" in msg


def test_top_level_not_a_list(tmp_path):
    qp = write(tmp_path, q={"id": "20"})
    msg = error_of(tmp_path)
    assert str(qp) in msg and "JSON list" in msg


def test_outputs_top_level_must_be_task_and_golds(tmp_path):
    write(tmp_path, o=[{"id": "20", "output": "sci-fi"}])
    msg = error_of(tmp_path)
    assert "dev_outputs.json" in msg and '"task"' in msg and '"golds"' in msg


@pytest.mark.parametrize("field", ["input", "profile"])
def test_missing_question_field_names_the_id(tmp_path, field):
    q = questions()
    del q[1][field]
    qp = write(tmp_path, q=q)
    msg = error_of(tmp_path)
    assert str(qp) in msg and "'21'" in msg and f"missing field '{field}'" in msg


def test_missing_id_names_the_index(tmp_path):
    q = questions()
    del q[1]["id"]
    qp = write(tmp_path, q=q)
    msg = error_of(tmp_path)
    assert str(qp) in msg and "index 1" in msg and "'id'" in msg


def test_missing_profile_field_names_question_item_and_field(tmp_path):
    q = questions()
    del q[0]["profile"][1]["tag"]
    qp = write(tmp_path, q=q)
    msg = error_of(tmp_path)
    assert str(qp) in msg and "'20'" in msg and "'201'" in msg and "['tag']" in msg


def test_profile_item_without_id(tmp_path):
    q = questions()
    del q[1]["profile"][0]["id"]
    write(tmp_path, q=q)
    msg = error_of(tmp_path)
    assert "record '21'" in msg and "['id']" in msg


def test_duplicate_question_id(tmp_path):
    q = questions()
    q[1]["id"] = "20"
    qp = write(tmp_path, q=q)
    msg = error_of(tmp_path)
    assert str(qp) in msg and "duplicate question id '20'" in msg


def test_duplicate_gold_id(tmp_path):
    o = outputs()
    o["golds"].append({"id": "21", "output": "comedy"})
    write(tmp_path, o=o)
    msg = error_of(tmp_path)
    assert "dev_outputs.json" in msg and "duplicate gold id '21'" in msg


def test_id_mismatch_names_missing_and_extra(tmp_path):
    o = outputs()
    o["golds"][1]["id"] = "99"
    write(tmp_path, o=o)
    msg = error_of(tmp_path)
    assert "dev_outputs.json" in msg and "'21'" in msg and "'99'" in msg
    assert "1 question id(s) have no gold" in msg and "1 gold id(s) have no question" in msg


def test_wrong_task_name(tmp_path):
    o = outputs()
    o["task"] = "LaMP_3"
    write(tmp_path, o=o)
    msg = error_of(tmp_path)
    assert "dev_outputs.json" in msg and "'LaMP_3'" in msg and "LaMP_2" in msg


def test_alias_task_name_is_accepted():
    spec = load_task("LaMP_2N")
    assert spec.accepts_task_name("LaMP_2")  # the old release's outputs say LaMP_2


def test_gold_outside_label_set(tmp_path):
    o = outputs()
    o["golds"][1]["output"] = "Comedy"  # case matters for the official exact-match scorer
    write(tmp_path, o=o)
    msg = error_of(tmp_path)
    assert "dev_outputs.json" in msg and "'21'" in msg and "'Comedy'" in msg


def test_rating_gold_outside_label_set(tmp_path):
    root = tmp_path / "r"
    (root / "LaMP_3").mkdir(parents=True)
    q = [{"id": "5", "input": "review: ok", "profile": [{"id": "50", "text": "fine", "score": "4"}]}]
    (root / "LaMP_3/dev_questions.json").write_text(json.dumps(q))
    (root / "LaMP_3/dev_outputs.json").write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": "5", "output": "4.5"}]}))
    msg = error_of(root, LAMP3)
    assert "'5'" in msg and "'4.5'" in msg


# ---------------------------------------------------------------------------------------------- real pack
@pytest.mark.skipif(not MINI.is_dir(), reason="LaMP-mini pack absent")
@pytest.mark.parametrize("task", sorted(MINI_DEV_COUNTS))
def test_mini_pack_reads_with_readme_counts(task):
    data = read_split(MINI, load_task(task), "dev")
    assert len(data.examples) == MINI_DEV_COUNTS[task]
    assert data.has_outputs and all(e.gold is not None for e in data.examples)


# ---------------------------------------------------------------------------------------------- download
def test_download_unreachable_fails_fast_with_one_line(tmp_path, capsys):
    rc = download.main(["--out", str(tmp_path / "lamp"), "--base-url", "http://127.0.0.1:9/LaMP", "--timeout", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("make data: cannot reach 127.0.0.1 (") and "Use DATA=mini or DATA=synthetic." in err[0]
    assert not (tmp_path / "lamp").exists()


def test_download_dns_failure_names_default_host(tmp_path, capsys, monkeypatch):
    def refuse(*a, **k):
        raise OSError("no network")
    monkeypatch.setattr(download.socket, "create_connection", refuse)
    assert download.main(["--out", str(tmp_path)]) == 1
    assert "cannot reach ciir.cs.umass.edu (OSError: no network)" in capsys.readouterr().err


def test_download_url_patterns():
    assert download.file_plan("user", "LaMP_2")[0] == (
        "https://ciir.cs.umass.edu/downloads/LaMP/LaMP_2/new/train/train_questions.json",
        "user/LaMP_2/train_questions.json")
    plan = download.file_plan("time", "LaMP_3")
    assert ("https://ciir.cs.umass.edu/downloads/LaMP/time/LaMP_3/dev/dev_outputs.json",
            "time/LaMP_3/dev_outputs.json") in plan
    assert [rel for _, rel in plan if rel.startswith("time/LaMP_3/test")] == ["time/LaMP_3/test_questions.json"]


def test_download_from_local_server_writes_layout_and_manifest(tmp_path, capsys):
    """A local HTTP server with the official nested tree stands in for the real host."""
    served = tmp_path / "served"
    for split in ("train", "dev", "test"):
        d = served / "time" / "LaMP_2" / "new" / split
        d.mkdir(parents=True)
        (d / f"{split}_questions.json").write_text(json.dumps(questions()))
        if split != "test":
            (d / f"{split}_outputs.json").write_text(json.dumps(outputs()))
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "lamp"
        base = f"http://127.0.0.1:{server.server_address[1]}"
        rc = download.main(["--out", str(out), "--base-url", base, "--tasks", "LaMP_2", "LaMP_6", "--kinds", "time"])
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["files"]["time/LaMP_2/dev_outputs.json"]
    assert entry["url"] == f"{base}/time/LaMP_2/new/dev/dev_outputs.json"
    assert entry["bytes"] == len(json.dumps(outputs()).encode())
    assert entry["sha256"] == hashlib.sha256(json.dumps(outputs()).encode()).hexdigest()
    assert len(manifest["files"]) == 5 and "LaMP_6" in manifest["skipped"]
    assert [e.gold for e in read_split(out / "time", LAMP2, "dev").examples] == ["sci-fi", "comedy"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass
