"""The synthetic pack: deterministic bytes, valid official format for every task, planted preferences that a
personalised rule can exploit and a non-personalised one cannot."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from benchmark.data.reader import read_split
from benchmark.data.synthetic import is_complete, write_synthetic
from benchmark.data.tasks import load_task

TASKS = [f"LaMP_{k}" for k in range(1, 8)]


def tree_sha(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synth"), seed=0)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, pack):
    again = write_synthetic(tmp_path / "again", seed=0)
    assert tree_sha(again) == tree_sha(pack)
    mtimes = {p: p.stat().st_mtime_ns for p in again.rglob("*.json")}
    write_synthetic(again, seed=0)  # idempotent: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*.json")} == mtimes
    other = write_synthetic(tmp_path / "other", seed=1)
    assert tree_sha(other)["LaMP_2/dev_outputs.json"] != tree_sha(pack)["LaMP_2/dev_outputs.json"]
    assert is_complete(pack, seed=0) and not is_complete(pack, seed=1)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_reads_back_in_the_official_layout(pack, task):
    spec = load_task(task)
    train, dev, test = (read_split(pack, spec, s) for s in ("train", "dev", "test"))
    assert (len(train.examples), len(dev.examples), len(test.examples)) == (18, 6, 6)  # 6 users x 3/1/1
    assert train.has_outputs and dev.has_outputs and not test.has_outputs  # test is predict-only, as official
    users = {e.user_id for e in dev.examples}
    assert len(users) == 6 and users == {e.user_id for e in test.examples}  # time-based: same users
    for ex in train.examples + dev.examples + test.examples:
        assert 3 <= len(ex.profile) <= 8
        assert ex.input.startswith(spec.input_template.split("{")[0])
        ids = [p["id"] for p in ex.profile]
        assert ids == sorted(ids) and ex.id not in ids


def test_profiles_grow_along_each_users_timeline(pack):
    spec = load_task("LaMP_4")
    dev = {e.user_id: e for e in read_split(pack, spec, "dev").examples}
    for ex in read_split(pack, spec, "test").examples:
        before = dev[ex.user_id]
        assert ex.profile[:len(before.profile)] == before.profile and len(ex.profile) == len(before.profile) + 1
        assert ex.profile[-1]["title"] == before.gold  # the dev answer is history for the test question


def test_lamp2_user_majority_beats_global_majority(pack):
    spec = load_task("LaMP_2")
    train, dev = read_split(pack, spec, "train").examples, read_split(pack, spec, "dev").examples
    global_label = Counter(e.gold for e in train).most_common(1)[0][0]
    user_majority = [Counter(p["tag"] for p in e.profile).most_common(1)[0][0] for e in dev]
    acc_user = sum(p == e.gold for p, e in zip(user_majority, dev)) / len(dev)
    acc_global = sum(global_label == e.gold for e in dev) / len(dev)
    assert acc_user >= 0.5 and acc_user > acc_global


def test_lamp3_users_have_a_rating_bias(pack):
    spec = load_task("LaMP_3")
    dev = read_split(pack, spec, "dev").examples
    errors_user = [abs(int(e.gold) - round(sum(int(p["score"]) for p in e.profile) / len(e.profile))) for e in dev]
    train = read_split(pack, spec, "train").examples
    mean_all = round(sum(int(e.gold) for e in train) / len(train))
    errors_global = [abs(int(e.gold) - mean_all) for e in dev]
    assert sum(errors_user) < sum(errors_global)


def test_lamp1_correct_reference_shares_words_with_the_profile(pack):
    spec = load_task("LaMP_1")
    hits = 0
    for ex in read_split(pack, spec, "dev").examples:
        words = {w for p in ex.profile for w in (p["title"] + " " + p["abstract"]).split()}
        refs = ex.input.split('[1]: "')[1].split('" [2]: "')
        refs = [refs[0], refs[1].rstrip('"')]
        overlap = [len(set(r.split()) & words) for r in refs]
        hits += ["[1]", "[2]"][overlap.index(max(overlap))] == ex.gold
    assert hits == 6


@pytest.mark.parametrize("task,field", [("LaMP_4", "title"), ("LaMP_5", "title"), ("LaMP_6", "title"),
                                        ("LaMP_7", "text")])
def test_generation_signature_in_profile_outputs_and_gold_not_in_input(pack, task, field):
    for ex in read_split(pack, load_task(task), "dev").examples:
        signature = " ".join(ex.gold.split()[:2])
        assert all(p[field].startswith(signature + " ") for p in ex.profile)
        assert signature not in ex.input
