"""Contract: every registered method fits, predicts, is scored and leaves a valid row, on the synthetic pack with
tiny causal AND seq2seq backbones. A new method gets this test for free by registering itself."""
from __future__ import annotations

import json

import pytest

from benchmark.contract.registry import get_method, method_names
from benchmark.runs import provenance as runs
from benchmark.runs.runner import main
from benchmark.data.tasks import load_task

TASKS = ("LaMP_1", "LaMP_2", "LaMP_3", "LaMP_7")   # binary, 15-way, rating, generation


@pytest.mark.slow
@pytest.mark.parametrize("method", method_names())
def test_method_contract(method, tiny_backbone_dir, tiny_overrides, tmp_path):
    cls = get_method(method)
    tasks = [t for t in TASKS if cls.unsupported_reason(load_task(t)) is None]
    assert tasks, f"{method} supports none of {TASKS}"
    code = main(["--tasks", ",".join(tasks), "--methods", method, "--profile", "test",
                 *tiny_overrides(tiny_backbone_dir)])
    rows = list(runs.read_rows(tmp_path / "results" / "runs.jsonl"))
    failed = [r.get("reason") for r in rows if r["status"] != "finished"]
    assert code == 0 and not failed, failed
    assert {r["task"] for r in rows} == set(tasks)
    for row in rows:
        spec = load_task(row["task"])
        assert set(row["metrics"]) == {m.name for m in spec.metrics}
        assert row["group"] == ("llm" if cls.uses_backbone else "reference")
        assert isinstance(row["cost"].get("trainable_params"), int)
        assert isinstance(row["cost"].get("stored_bytes_per_user"), int)
        samples = [json.loads(x) for x in (tmp_path / "results" / row["samples"]).read_text().splitlines()]
        assert len(samples) == row["n"] > 0
        assert all(isinstance(s["output"], str) for s in samples)
        if spec.kind != "generation" and row["answer_mode"] == "choice":
            assert all(s["output"] in spec.labels for s in samples)
