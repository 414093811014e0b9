"""LampDataModule (seeded, recorded caps; provenance; per-user history; loaders) and source resolution
(benchmark.data.sources: mini / official / synthetic / path / auto)."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from benchmark.runs.config import CONFIG_DIR
from benchmark.data.datamodule import LampDataModule, seeded_subset
from benchmark.data.example import Example
from benchmark.data.sources import REPO_ROOT, resolve_source
from benchmark.data.synthetic import write_synthetic
from benchmark.data.tasks import load_task

LAMP2 = load_task("LaMP_2")


def make_cfg(tmp_path: Path, seed: int = 0, batch_size: int = 8, **data):
    """configs/base.yaml with temp dirs; ``data`` overrides ``cfg.data`` keys."""
    cfg = OmegaConf.load(CONFIG_DIR / "base.yaml")
    cfg.seed, cfg.backbone.batch_size = seed, batch_size
    cfg.run.cache_dir = str(tmp_path / "cache")
    cfg.data.official_root = str(tmp_path / "no_official")
    cfg.data.source = "synthetic"
    for k, v in data.items():
        cfg.data[k] = v
    return cfg


def module(tmp_path, **data) -> LampDataModule:
    dm = LampDataModule(make_cfg(tmp_path, **data), LAMP2)
    dm.prepare_data()
    dm.setup()
    return dm


def lamp_folder(root: Path, split: str = "dev", task: str = "LaMP_2") -> Path:
    """A minimal valid LaMP_2 split under ``root`` (hand-written)."""
    (root / task).mkdir(parents=True, exist_ok=True)
    q = [{"id": "1", "input": "description: x", "user_id": "a",
          "profile": [{"id": "10", "description": "d", "tag": "comedy"}]}]
    (root / task / f"{split}_questions.json").write_text(json.dumps(q))
    (root / task / f"{split}_outputs.json").write_text(json.dumps({"task": task, "golds": [{"id": "1", "output": "comedy"}]}))
    return root


# ---------------------------------------------------------------------------------------------- datamodule
def test_provenance_hashes_the_files_actually_used(tmp_path):
    dm = module(tmp_path)
    root = tmp_path / "cache" / "synthetic" / "seed0"
    prov = dm.provenance
    assert prov["sources"]["eval"]["kind"] == "synthetic" and Path(prov["sources"]["eval"]["root"]) == root.resolve()
    assert prov["splits"] == {"train": "train", "eval": "dev"}
    dev_q = root / "LaMP_2" / "dev_questions.json"
    assert prov["files"]["eval"]["LaMP_2/dev_questions.json"] == hashlib.sha256(dev_q.read_bytes()).hexdigest()
    assert set(prov["files"]["train"]) == {"LaMP_2/train_questions.json", "LaMP_2/train_outputs.json"}
    assert len(prov["digest"]) == 64 and prov["eval_has_gold"] is True
    assert (len(dm.train_examples), len(dm.eval_examples)) == (18, 6)
    assert prov["selection"]["eval"] == {"n_total": 6, "n_selected": 6, "ids_sha256": hashlib.sha256(
        "\n".join(e.id for e in dm.eval_examples).encode()).hexdigest()}
    dm.prepare_data()
    dm.setup("predict")  # Lightning calls both again inside Trainer.fit / predict: nothing is lost
    assert dm.provenance is prov and prov["selection"]["eval"]["n_selected"] == 6


def test_caps_are_seeded_in_file_order_and_recorded(tmp_path):
    full = module(tmp_path)
    random.seed(123)  # the global RNG must not matter
    a = module(tmp_path, limit=3, train_limit=5)
    random.seed(999)
    b = module(tmp_path, limit=3, train_limit=5)
    assert [e.id for e in a.eval_examples] == [e.id for e in b.eval_examples]
    assert len(a.eval_examples) == 3 and len(a.train_examples) == 5
    order = [e.id for e in full.eval_examples]
    picked = [e.id for e in a.eval_examples]
    assert picked == [i for i in order if i in picked]  # sorted back to file order
    sel = a.provenance["selection"]
    assert sel["eval"]["n_total"] == 6 and sel["eval"]["n_selected"] == 3
    assert sel["eval"]["ids_sha256"] == hashlib.sha256("\n".join(picked).encode()).hexdigest()
    assert a.provenance["limits"] == {"limit": 3, "train_limit": 5}
    # the eval sample does not depend on the train cap
    assert [e.id for e in module(tmp_path, limit=3, train_limit=2).eval_examples] == picked


def test_seeded_subset_depends_on_the_seed():
    exs = [Example(id=str(i), user_id="u", input="x") for i in range(30)]
    picks = {tuple(e.id for e in seeded_subset(exs, 5, seed, "eval")) for seed in range(5)}
    assert len(picks) > 1
    assert seeded_subset(exs, None, 0, "eval") == exs and seeded_subset(exs, 99, 0, "eval") == exs
    with pytest.raises(ValueError, match="data.limit"):
        seeded_subset(exs, 0, 0, "eval")


def test_smaller_caps_are_nested_prefixes_of_the_seeded_order():
    exs = [Example(id=str(i), user_id="u", input="x") for i in range(40)]
    picks = [{e.id for e in seeded_subset(exs, n, 0, "eval")} for n in (5, 12, 30, 40)]
    assert all(small < big for small, big in zip(picks, picks[1:]))


def test_a_method_cap_evaluates_a_prefix_of_the_task_sample(tmp_path):
    full = module(tmp_path, limit=5)
    capped = module(tmp_path, limit=5, method_limit=3)
    ids, sub = [e.id for e in full.eval_examples], [e.id for e in capped.eval_examples]
    assert len(sub) == 3 and set(sub) < set(ids) and sub == [i for i in ids if i in sub]
    assert capped.provenance["limits"] == {"limit": 5, "train_limit": None, "method_limit": 3}
    assert [e.id for e in capped.train_examples] == [e.id for e in full.train_examples]


def test_user_history_is_the_earliest_evaluated_profile(tmp_path):
    dm = module(tmp_path, train_limit=1)
    for ex in dm.eval_examples:  # synthetic time-based: one dev question per user -> its own profile
        assert dm.user_history(ex.user_key) == ex.profile
    assert dm.users("eval") == [e.user_key for e in dm.eval_examples]
    assert set(dm.users()) == set(dm.users("eval"))
    with pytest.raises(KeyError, match="nobody"):
        dm.user_history("nobody")


def test_user_history_never_holds_an_evaluated_gold(tmp_path):
    """LaMP_6 mini: 10 dev questions per user; a later one's profile holds the earlier ones' answers, so the history
    is what every one of them sees (profiles are windows of the 100 latest items, not prefixes)."""
    from benchmark.data.sources import mini_root
    from benchmark.runs.config import compose
    cfg = compose("LaMP_6", "zeroshot", [f"run.cache_dir={tmp_path}", "data.source=mini"], profile="test")
    if mini_root(cfg.data) is None:
        pytest.skip("LaMP-mini pack not present")
    cfg.data.limit = None
    dm = LampDataModule(cfg, load_task("LaMP_6"))
    dm.setup()
    for user in dm.users("eval"):
        own = [ex for ex in dm.eval_examples if ex.user_key == user]
        assert len(own) > 1
        history = dm.user_history(user)
        ids = {it["id"] for it in history}
        assert history and all(ids <= {it["id"] for it in ex.profile} for ex in own)  # seen by every question
        later_items = {it["id"] for ex in own for it in ex.profile} - ids
        assert later_items  # items only later questions see (earlier golds among them) were not used


def test_loaders_yield_lists_of_examples(tmp_path):
    dm = module(tmp_path, batch_size=4)
    batches = list(dm.predict_dataloader())
    assert [len(b) for b in batches] == [4, 2] and all(isinstance(e, Example) for e in batches[0])
    assert [e.id for b in batches for e in b] == [e.id for e in dm.eval_examples]
    train = [e.id for b in dm.train_dataloader() for e in b]
    assert sorted(train) == sorted(e.id for e in dm.train_examples)
    assert train == [e.id for b in module(tmp_path, batch_size=4).train_dataloader() for e in b]  # seeded shuffle


def test_train_source_can_differ_and_missing_split_is_named(tmp_path):
    path = lamp_folder(tmp_path / "custom")
    dm = module(tmp_path, source=str(path), train_source="synthetic")
    assert dm.provenance["sources"]["eval"]["kind"] == "path"
    assert dm.provenance["sources"]["train"]["kind"] == "synthetic"
    assert [e.id for e in dm.eval_examples] == ["1"] and len(dm.train_examples) == 18
    with pytest.raises(FileNotFoundError, match="custom/LaMP_2/train_questions.json"):
        LampDataModule(make_cfg(tmp_path, source=str(path)), LAMP2).prepare_data()


def test_predict_only_eval_split(tmp_path):
    dm = module(tmp_path, eval_split="test")
    assert dm.provenance["eval_has_gold"] is False and all(e.gold is None for e in dm.eval_examples)


# ---------------------------------------------------------------------------------------------- sources
def test_auto_prefers_official_then_mini_then_synthetic(tmp_path):
    cfg = make_cfg(tmp_path, mini_root=str(tmp_path / "mini"), official_root=str(tmp_path / "official"))
    lines: list[str] = []
    kw = dict(spec=LAMP2, cache_dir=tmp_path / "cache", log=lines.append)
    assert resolve_source("auto", cfg.data, **kw).kind == "synthetic"
    lamp_folder(tmp_path / "mini")
    assert resolve_source("auto", cfg.data, **kw).kind == "mini"
    lamp_folder(tmp_path / "official" / "time", task="LaMP_3")  # official without this task: not chosen
    assert resolve_source("auto", cfg.data, **kw).kind == "mini"
    lamp_folder(tmp_path / "official" / "time")
    src = resolve_source("auto", cfg.data, **kw)
    assert src.kind == "official" and src.root == (tmp_path / "official" / "time").resolve()
    assert len(lines) == 4 and lines[0].startswith("data: source auto -> synthetic")
    assert "LaMP-mini found" in lines[1] and "official LaMP files with LaMP_2 found" in lines[3]


def test_named_sources_and_errors(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, mini_root=str(tmp_path / "absent"), official_root=str(tmp_path / "official"))
    with pytest.raises(ValueError, match="'nonsense' is not one of auto, mini, official, synthetic"):
        resolve_source("nonsense", cfg.data)
    with pytest.raises(FileNotFoundError, match="make data"):
        resolve_source("official", cfg.data, spec=LAMP2)
    monkeypatch.delenv("LAMP_MINI", raising=False)
    with pytest.raises(FileNotFoundError, match="data source 'mini'"):
        resolve_source("mini", cfg.data)
    monkeypatch.setenv("LAMP_MINI", str(lamp_folder(tmp_path / "env_mini")))
    assert resolve_source("mini", cfg.data).root == (tmp_path / "env_mini").resolve()
    synth = resolve_source("synthetic", cfg.data, cache_dir=tmp_path / "c", seed=3)
    assert synth.root == (tmp_path / "c" / "synthetic" / "seed3").resolve()
    assert synth.root.joinpath("LaMP_2", "dev_questions.json").is_file()
    with pytest.raises(FileNotFoundError, match="official LaMP layout"):
        resolve_source(str(tmp_path / "c"), cfg.data, spec=LAMP2)
    assert resolve_source(str(synth.root), cfg.data, spec=LAMP2).kind == "path"


def test_relative_mini_root_resolves_against_cwd_then_repo(tmp_path, monkeypatch):
    write_synthetic(tmp_path / "work" / "pack", seed=0, tasks=["LaMP_2"])
    monkeypatch.chdir(tmp_path / "work")
    cfg = make_cfg(tmp_path, mini_root="pack")  # relative to the working directory
    assert resolve_source("mini", cfg.data, spec=LAMP2).root == (tmp_path / "work" / "pack").resolve()
    cfg = make_cfg(tmp_path, mini_root="configs")  # exists relative to the repo root, but holds no LaMP files
    with pytest.raises(FileNotFoundError, match="no LaMP-mini pack for LaMP_2"):
        resolve_source("mini", cfg.data, spec=LAMP2)


@pytest.mark.skipif(not (REPO_ROOT / "../shared/data/lamp_mini").is_dir(), reason="LaMP-mini pack absent")
def test_default_mini_root_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("LAMP_MINI", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg(tmp_path)  # base.yaml's mini_root: '../shared/data/lamp_mini'
    assert resolve_source("mini", cfg.data, spec=LAMP2).root == (REPO_ROOT / "../shared/data/lamp_mini").resolve()
