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


# ---------------------------------------------------------------------------------------------- typed method configs
@pytest.mark.parametrize("method", method_names())
def test_every_method_config_is_its_validated_dataclass_on_every_task(method):
    from benchmark.contract.config import instantiate
    cls = get_method(method)
    for task in task_names():
        obj = instantiate(cls.Config, compose(task, method, [], profile="test").method, method)
        assert type(obj) is cls.Config and obj.name == method


@pytest.mark.parametrize("method,override,message", [
    ("bm25", "method.k=0", "bm25.yaml.*k must be >= 1"),
    ("summary", "method.selection=oldest", "summary.yaml.*selection"),
    ("summary_only", "method.k=2", "summary_only takes k = 0"),
    ("oppu", "method.fallback=base", "oppu.yaml.*fallback"),
    ("oppu", "method.user.batch_size=0", "oppu.yaml.*batch_size"),
    ("pplug", "method.select=best", "pplug.yaml.*select"),
    ("user_majority", "method.fallback_rating_stat=median", "user_majority.yaml.*fallback_rating_stat"),
    ("bm25", "method.k=two", "bm25.yaml|k"),
])
def test_bad_method_values_fail_at_compose_naming_the_file(method, override, message):
    with pytest.raises(ConfigError, match=message):
        compose("LaMP_2", method, [override], profile="test")


def test_method_owned_templates_live_in_the_method_yaml_keyed_by_task():
    spec_fields = set(load_task("LaMP_2").__dataclass_fields__)
    assert not spec_fields & {"user_pair", "summary_prompt", "summary_item", "pplug_query"}
    lamp7 = compose("LaMP_7", "oppu", [], profile="test").method
    assert (lamp7.user_pair.input, lamp7.user_pair.output) == ("Complete the following tweet: {head}", "{tail}")
    assert compose("LaMP_7", "oppu_rag", [], profile="test").method.user_pair == lamp7.user_pair     # extends: oppu
    assert compose("LaMP_3", "pplug", [], profile="paper").method.epochs == 1                          # tasks: LaMP_3
    assert compose("LaMP_2", "pplug", [], profile="paper").method.epochs == 2
    assert compose("LaMP_2", "tasktuned", [], profile="test").method.query.marker == "description: "  # extends: pplug
    assert "{history}" in compose("LaMP_4", "summary_only", [], profile="test").method.summary_prompt


def test_a_method_yaml_with_an_unknown_task_or_key_is_an_error(tmp_path, monkeypatch):
    from benchmark.runs import config as config_mod
    bad = tmp_path / "bm25.yaml"
    monkeypatch.setattr(config_mod, "method_file", lambda name: bad)
    bad.write_text("method: {k: 1}\ntasks: {LaMP_9: {k: 2}}\n")
    with pytest.raises(ConfigError, match="tasks.LaMP_9 is not a shipped task"):
        compose("LaMP_2", "bm25", [], profile="test")
    bad.write_text("method: {k: 1}\ntasks: {LaMP_2: {kk: 2}}\n")
    with pytest.raises(ConfigError, match="tasks.LaMP_2.*kk"):
        compose("LaMP_2", "bm25", [], profile="test")
    bad.write_text("method: {k: 1}\ntasks: {LaMP_2: {k: 4}}\n")
    assert compose("LaMP_2", "bm25", [], profile="test").method.k == 4
    assert compose("LaMP_3", "bm25", [], profile="test").method.k == 1


def test_profile_method_caps_reach_only_their_method(tmp_path, monkeypatch):
    import benchmark.runs.config as config
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "capped.yaml").write_text("data: {limit: 150}\nmethod_caps: {oppu: 60}\n")
    monkeypatch.setattr(config, "profile_file", lambda name: profiles / f"{name}.yaml")
    assert config.compose("LaMP_2", "oppu", profile="capped").data.method_limit == 60
    assert config.compose("LaMP_2", "zeroshot", profile="capped").data.method_limit is None


def test_profiles_override_every_variant_of_a_family():
    """A profile that tunes a method tunes every method that ``extends`` it (a new variant must not silently fall
    back to the method's own defaults, e.g. the paper's settings on a CPU)."""
    import yaml

    from benchmark.runs.config import CONFIG_DIR
    parents = {p.stem: (yaml.safe_load(p.read_text()) or {}).get("extends")
               for p in (CONFIG_DIR / "methods").glob("*.yaml")}
    for profile in (CONFIG_DIR / "profiles").glob("*.yaml"):
        overridden = set((yaml.safe_load(profile.read_text()) or {}).get("method_overrides") or {})
        missing = sorted(m for m, parent in parents.items() if parent in overridden and m not in overridden)
        assert not missing, f"{profile.name}: method_overrides has {sorted(overridden & set(parents.values()))} " \
                            f"but not their variants {missing}"
