"""Every shipped YAML validates; the merge order and the unknown-key rule hold."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from benchmark.contract.registry import get_method, method_names
from benchmark.runs.config import CONFIG_DIR, ConfigError, compose, config_hash, method_sweep
from benchmark.data.tasks import load_task, task_names


def test_every_task_file_validates():
    names = task_names()
    assert names[:7] == [f"LaMP_{k}" for k in range(1, 8)] and "LaMP_2N" in names
    for name in names:
        spec = load_task(name)
        assert spec.name == name and spec.metrics and spec.doc_fields and spec.embed_fields
        if spec.kind != "generation":
            assert spec.labels


@pytest.mark.parametrize("method", method_names())
def test_every_method_composes_with_every_profile(method):
    for profile in sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml")):
        for label, extra in method_sweep(method):
            cfg = compose("LaMP_2", method, extra, profile=profile)
            assert cfg.method.name == method and cfg.profile == profile


def test_every_method_file_belongs_to_a_registered_method():
    for f in (CONFIG_DIR / "methods").glob("*.yaml"):
        get_method(f.stem)


def test_merge_order_base_task_method_profile_cli():
    cfg = compose("LaMP_3", "zeroshot", ["decoding.num_beams=3"], profile="paper")
    assert cfg.task.name == "LaMP_3" and cfg.task.max_new_tokens == 10       # task file
    assert cfg.backbone.id == "google/flan-t5-xxl"                            # profile over base
    assert cfg.decoding.num_beams == 3                                        # CLI over profile (4)
    assert compose("LaMP_3", "zeroshot", [], profile="cpu").decoding.answer_mode == "choice"


def test_unknown_keys_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match="data.limt"):
        compose("LaMP_1", "zeroshot", ["data.limt=3"])
    with pytest.raises(ConfigError, match="method"):
        compose("LaMP_1", "zeroshot", ["method.nonsense=1"])
    with pytest.raises(KeyError, match="zeroshto|Did you mean"):
        compose("LaMP_1", "zeroshto", [])


def test_config_hash_ignores_paths_but_not_settings():
    a = compose("LaMP_1", "zeroshot", ["run.results_dir=/tmp/x"])
    b = compose("LaMP_1", "zeroshot", ["run.results_dir=/tmp/y"])
    c = compose("LaMP_1", "zeroshot", ["seed=1"])
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_broken_task_node_is_rejected():
    from benchmark.data.tasks import spec_from_config
    node = OmegaConf.load(CONFIG_DIR / "tasks" / "LaMP_2.yaml").task
    node.kind = "regression"
    with pytest.raises(ValueError, match="kind"):
        spec_from_config(node)


def test_profile_method_caps_reach_only_their_method(tmp_path, monkeypatch):
    import benchmark.runs.config as config
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "capped.yaml").write_text("data: {limit: 150}\nmethod_caps: {oppu: 60}\n")
    monkeypatch.setattr(config, "profile_file", lambda name: profiles / f"{name}.yaml")
    assert config.compose("LaMP_2", "oppu", profile="capped").data.method_limit == 60
    assert config.compose("LaMP_2", "zeroshot", profile="capped").data.method_limit is None
