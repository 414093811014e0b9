"""The worked example of docs/adding_a_method.md, run for real: a prompting method with per-task prompts, written
as one module and one YAML (tests/worked_example/), registered and run through ``run`` like any shipped method.

In the repository the two files would be ``baselines/recent_hint.py`` and ``configs/methods/recent_hint.yaml``;
here they stay out of the shipped grid, so the test points the config loader at the YAML and registers the module
into a throw-away copy of the registry."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from benchmark.contract import registry
from benchmark.runs import config as config_mod
from benchmark.runs.config import ConfigError, compose
from benchmark.runs.experiment import run

HERE = Path(__file__).resolve().parent / "worked_example"


@pytest.fixture
def recent_hint(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))   # registration is undone after the test
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("recent_hint", None)
    module = importlib.import_module("recent_hint")
    real = config_mod.method_file
    monkeypatch.setattr(config_mod, "method_file",
                        lambda name: HERE / "recent_hint.yaml" if name == "recent_hint" else real(name))
    yield module
    sys.modules.pop("recent_hint", None)


@pytest.mark.parametrize("task,opening", [("LaMP_2", "This user tagged these movies before: \""),
                                          ("LaMP_7", "This user wrote these tweets before: \"")])
def test_per_task_prompts_come_from_the_method_yaml(recent_hint, task, opening, tiny_causal_dir, tiny_overrides):
    cfg = compose(task, "recent_hint", tiny_overrides(tiny_causal_dir), profile="test")
    assert cfg.method.hint.startswith(opening[:20]) and "recent_hint" in registry.method_names()
    out = run(cfg)
    pred = out.prediction
    assert len(pred.outputs) == len(out.examples) > 0 and set(out.aggregates) == {m.name for m in out.spec.metrics}
    for ex, prompt in zip(out.examples, pred.prompts):
        if ex.profile:
            assert prompt.startswith(opening) and prompt.endswith(ex.input)
            latest = ex.profile[-1]
            assert str(latest.get("description", latest.get("text"))) in prompt     # the latest item is shown


def test_a_task_without_an_entry_gets_the_plain_input(recent_hint, tiny_causal_dir, tiny_overrides):
    out = run(compose("LaMP_3", "recent_hint", tiny_overrides(tiny_causal_dir), profile="test"))
    assert out.prediction.prompts == [ex.input for ex in out.examples]


def test_its_config_is_validated_once_with_the_yaml_named(recent_hint):
    with pytest.raises(ConfigError, match="recent_hint.yaml.*n_items"):
        compose("LaMP_2", "recent_hint", ["method.n_items=0"], profile="test")
    with pytest.raises(ConfigError, match="unknown key 'method.nitems'"):
        compose("LaMP_2", "recent_hint", ["method.nitems=3"], profile="test")


def test_the_doc_shows_exactly_the_tested_files():
    """docs/adding_a_method.md prints the module and the YAML this test runs (so the doc cannot go stale)."""
    doc = (HERE.parents[1] / "docs" / "adding_a_method.md").read_text()
    blocks = doc.split("```")
    code = next(b for b in blocks if b.startswith("python") and "recent_hint" in b).removeprefix("python\n")
    yaml = next(b for b in blocks if b.startswith("yaml") and "tasks:" in b).removeprefix("yaml\n")
    module = (HERE / "recent_hint.py").read_text()
    assert code.strip() in module
    assert yaml.strip() in (HERE / "recent_hint.yaml").read_text()
