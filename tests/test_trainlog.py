"""Training logs through Lightning's loggers (benchmark/contract/trainlog.py): Persona-Plug and OPPU's LoRA stages
write train_loss / lr (/ val_loss) as CSV into the run folder, and the site draws them."""
from __future__ import annotations

import csv
import json

import pytest

from benchmark.runs import provenance as runs
from benchmark.runs.runner import main
from benchmark.contract.trainlog import make_logger, read_curves

OPPU_SMALL = ["method.task.max_pairs=4", "method.task.batch_size=2", "method.user.epochs=1",
              "method.user.batch_size=2", "method.user.max_pairs=3"]


def test_logger_choice(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    assert make_logger("none", tmp_path / "logs", "plug") is False and make_logger("csv", None, "plug") is False
    log = make_logger("csv", tmp_path / "logs", "user-ml10m:33384")
    assert isinstance(log, CSVLogger) and log.log_dir == str(tmp_path / "logs" / "user-ml10m_33384")
    with pytest.raises(ValueError, match="train_logger"):
        make_logger("mlflow", tmp_path, "plug")


def test_logger_does_not_change_the_config_hash():
    from benchmark.runs.config import compose, config_hash
    a = compose("LaMP_2", "pplug", [], profile="test")
    b = compose("LaMP_2", "pplug", ["run.train_logger=none"], profile="test")
    assert config_hash(a) == config_hash(b)


@pytest.mark.slow
def test_pplug_and_oppu_runs_log_curves(tiny_causal_dir, tiny_overrides, tmp_path):
    assert main(["--tasks", "LaMP_2", "--methods", "pplug", "--profile", "test", *tiny_overrides(tiny_causal_dir),
                 "method.cache=false", "method.select=val_loss", "method.select_fraction=0.34", "method.max_steps=-1",
                 "method.epochs=1"]) == 0
    assert main(["--tasks", "LaMP_2", "--methods", "oppu", "--profile", "test",
                 *tiny_overrides(tiny_causal_dir, *OPPU_SMALL)]) == 0
    rows = {r["method"]: r for r in runs.read_rows(tmp_path / "results" / "runs.jsonl")}
    plug_dir = tmp_path / "results" / "runs" / rows["pplug"]["run_id"]
    with (plug_dir / "logs" / "plug" / "metrics.csv").open() as f:
        recs = list(csv.DictReader(f))
    steps = [r for r in recs if r.get("train_loss")]
    assert len(steps) == rows["pplug"]["cost"]["train_steps"] and all(float(r["lr"]) >= 0 for r in steps)
    assert any(r.get("val_loss") for r in recs)
    prompts = (plug_dir / "prompts.jsonl").read_text().splitlines()  # the run keeps what the model read
    assert len(prompts) == rows["pplug"]["n"] and all(json.loads(x)["prompt"] for x in prompts)
    (curve,) = read_curves(plug_dir)
    assert {"train_loss", "lr", "val_loss"} <= set(curve.series)
    names = [c.name for c in read_curves(tmp_path / "results" / "runs" / rows["oppu"]["run_id"])]
    assert names[0] == "task" and sum(n.startswith("user-") for n in names) == rows["oppu"]["cost"]["n_users_with_adapter"]
