"""Leaderboard, plots and compare CLI on the hand-built fixture results dir (tests/fixtures/runs_fixture/build.py).

Expected markers, by hand (paired bootstrap of the headline metric, p < 0.05; "d" = examples where two runs differ):

LaMP_2 accuracy: bm25 0.800, user_majority 0.250, pplug 0.200 (= zeroshot's outputs), zeroshot 0.200.
  bm25 vs zeroshot d=24 all wins -> †; vs best other (user_majority) d=22 -> ‡; vs best reference -> §.
  pplug vs zeroshot d=0 (identical, p = 1) -> no †; vs bm25 -> ‡; vs user_majority d=2 (p ~ 0.3) -> no §.
  zeroshot vs bm25 -> ‡ only.  user_majority (reference): vs zeroshot d=2 -> no †; vs bm25 -> ‡; no § column.
LaMP_3 MAE (lower is better): bm25 0.200, pplug 0.500, user_majority 0.600, summary 0.700 (other ids), zeroshot 1.0.
  bm25: vs zeroshot d=30 †, vs pplug d=9 ‡, vs user_majority d=12 §.  pplug: † (d=15), ‡ vs bm25, vs
  user_majority d=3 (p ~ 0.1) no §.  user_majority: † (d=12), ‡ vs bm25.  zeroshot: ‡ vs bm25, § (d=12).
  summary scored 20 of the 30 ids: every test is skipped with a note, no marker.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from benchmark.report import compare, leaderboard
from benchmark.report import rows as run_rows
from benchmark.report.plots import Point, pareto_front

FIXTURE = Path(__file__).parent / "fixtures" / "runs_fixture"
REPORTED_TITLE = "Reported in the Persona-Plug paper (FlanT5-XXL, time-based dev; not measured here)"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    return root


@pytest.fixture(scope="module")
def board(results) -> str:
    return leaderboard.build(results, results / "leaderboard.md", n_boot=2000, seed=0, plots=True)


def table(md: str, task: str) -> dict[str, list[str]]:
    """The measured table of one task as {method label: cells}."""
    block = md.split(f"### {task}:")[1].split("\n#")[0]
    head, rows = None, {}
    for line in block.splitlines():
        if line.startswith("| group"):
            head = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("| ") and head:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[1]] = dict(zip(head, cells))
    return rows


def test_only_finished_and_latest_rows_are_shown(board, results):
    lamp2 = table(board, "LaMP_2")
    assert sorted(lamp2) == ["bm25 (k=4)", "pplug", "user_majority", "zeroshot"]  # no cancelled oppu
    assert lamp2["bm25 (k=4)"]["accuracy ↑"].startswith("**0.800")  # not the older 0.100 row written after it
    assert "oppu" not in board.split(REPORTED_TITLE)[0]
    assert "9 rows shown of 12 recorded" in board


def test_latest_row_by_finished_at_then_file_order():
    def row(run_id, stamp, status="finished"):
        return {"run_id": run_id, "status": status, "task": "LaMP_2", "method": "bm25", "variant": "",
                "metrics": {}, "data": {"source": "mini", "digest": "x", "eval_split": "dev"}, "finished_at": stamp}

    rows = [row("new", "2025-02-01"), row("old", "2025-01-01"), row("tie-a", "2025-03-01", "cancelled")]
    assert [r["run_id"] for r in leaderboard.select_rows(rows)] == ["new"]
    rows = [row("first", "2025-02-01"), row("second", "2025-02-01")]
    assert [r["run_id"] for r in leaderboard.select_rows(rows)] == ["second"]


def test_bold_respects_lower_is_better_and_ci_text(board):
    lamp3 = table(board, "LaMP_3")
    assert lamp3["bm25 (k=4)"]["MAE ↓"] == "**0.200 [0.067, 0.333]**"
    assert lamp3["zeroshot"]["MAE ↓"] == "1.000 [1.000, 1.000]"  # the largest error is not bold
    assert lamp3["bm25 (k=4)"]["RMSE ↓"].startswith("**0.447 [")  # sqrt(6/30)
    lamp2 = table(board, "LaMP_2")
    assert lamp2["bm25 (k=4)"]["accuracy ↑"] == "**0.800 [0.675, 0.925]**"
    assert lamp2["user_majority"]["accuracy ↑"] == "0.250 [0.125, 0.375]"


def test_rows_are_ordered_reference_first_then_best_first(board):
    assert list(table(board, "LaMP_3")) == ["user_majority", "bm25 (k=4)", "pplug", "summary", "zeroshot"]
    assert table(board, "LaMP_3")["user_majority"]["group"] == "reference"


def test_significance_markers(board):
    sig2 = {m: c["sig."] for m, c in table(board, "LaMP_2").items()}
    assert sig2 == {"user_majority": "‡", "bm25 (k=4)": "†‡§", "pplug": "‡", "zeroshot": "‡"}
    sig3 = {m: c["sig."] for m, c in table(board, "LaMP_3").items()}
    assert sig3 == {"user_majority": "†‡", "bm25 (k=4)": "†‡§", "pplug": "†‡", "summary": "",
                    "zeroshot": "‡§"}
    assert "† not tested for summary vs zeroshot" in board and "a paired test needs the same ids" in board
    for marker in "†‡§":
        assert f"**{marker}**" in board  # explained in the legend


def test_header_lists_models_without_reference_nones(board):
    header = board.split("\n## ")[0]
    assert "| backbones | `smollm2-135m-instruct` |" in header  # reference rows load no backbone (None)
    assert "| commits | `abc1234def` (9 rows) |" in header and "None" not in header


def test_tasks_with_own_digests_share_a_section_and_two_digests_split_a_task(board, results, tmp_path):
    assert board.count("\n## Data ") == 1  # each task has its own data digest, yet one section per source
    rows = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines()]
    moved = {**rows[0], "run_id": "zs2-newdata", "data": {**rows[0]["data"], "digest": "n3wd1g35t"}}
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, moved]))
    md = leaderboard.build(tmp_path, tmp_path / "lb.md", n_boot=200, plots=False)
    assert "### LaMP_2@d1g35tLa: " in md and "### LaMP_2@n3wd1g35: " in md  # never mixed in one table
    assert "LaMP_2@n3wd1g35 (accuracy)" in md.split("#### Summary")[1]
    assert "no per-example scores" in md  # the folder has no samples: tests are skipped with a note


def test_a_changed_question_cap_starts_a_new_section_newest_first(results, tmp_path):
    rows = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines()]
    newer = {**rows[0], "run_id": "zs-cap25", "finished_at": "2026-01-01T00:00:00+00:00",
             "data": {**rows[0]["data"], "limit": 25}}
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, newer]))
    md = leaderboard.build(tmp_path, tmp_path / "lb.md", n_boot=200, plots=False)
    sections = re.findall(r"\n## Data .*", md)
    assert len(sections) == 2 and "25 questions per task" in sections[0] and "40 questions per task" in sections[1]
    assert "zeroshot" in md.split(sections[1])[1]       # the older protocol keeps its own zeroshot row


def test_cost_columns_and_data_line(board):
    pplug = table(board, "LaMP_2")["pplug"]
    assert (pplug["trainable params"], pplug["stored bytes/user"], pplug["train s"]) == ("1.23M", "1.5 KiB", "60.0")
    assert pplug["unparsable"] == "3" and pplug["n"] == "40"
    assert "40 of 126 `dev` questions" in board
    assert "rows scored different example sets" in board.split("### LaMP_3")[1]


def test_summary_ranks_average_ties(board):
    summary = board.split("#### Summary")[1].split("\n## ")[0]
    rows = {r[0]: r[1:] for r in ([c.strip() for c in line.strip("|").split("|")] for line in summary.splitlines()
                                  if line.startswith("| ") and not line.startswith("| method"))}
    assert rows["bm25 (k=4)"][:2] == ["1.00", "2"]
    assert rows["pplug"] == ["2.75", "2", "3.5", "2"]  # tied with zeroshot on LaMP_2: ranks 3 and 4 -> 3.5
    assert rows["summary"] == ["4.00", "1", "–", "4"]


def test_reported_block_is_separate(board):
    measured, reported = board.split(f"## {REPORTED_TITLE}")
    assert "### LaMP_" not in reported and "Reported, not measured" in reported
    assert "| LaMP_2 | accuracy ↑ | 0.416 | 0.565 | +35.8 % |" in reported
    assert "| LaMP_3 | MAE ↓ | 0.246 | 0.231 | +6.1 % |" in reported
    assert "0.565" not in measured and "secondary" in reported


def test_plots_written_linked_and_output_deterministic(board, results):
    links = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", board)
    assert len(links) == 2
    pngs = {link: (results / link).read_bytes() for link in links}
    assert all(data.startswith(b"\x89PNG") for data in pngs.values())
    again = leaderboard.build(results, results / "again.md", n_boot=2000, seed=0, plots=True)
    assert again == board and (results / "leaderboard.md").read_text() == board
    assert all((results / link).read_bytes() == data for link, data in pngs.items())


def test_pareto_front_by_hand():
    pts = [Point("free", "llm", 0.2, cost=0), Point("cheap", "llm", 0.5, cost=10), Point("waste", "llm", 0.4, cost=100),
           Point("best", "llm", 0.8, cost=1000), Point("nocost", "llm", 0.9)]
    assert [p.label for p in pareto_front(pts, higher_is_better=True)] == ["free", "cheap", "best"]
    assert [p.label for p in pareto_front(pts, higher_is_better=False)] == ["free"]


def test_formatting_units():
    assert leaderboard.fmt_scaled(0) == "0" and leaderboard.fmt_scaled(1234567) == "1.23M"
    assert leaderboard.fmt_scaled(2048, leaderboard.BYTE_UNITS) == "2.0 KiB"
    assert leaderboard.fmt_scaled(None) == "–"


def test_compare_cli_prints_paired_test(results, capsys):
    assert compare.main(["bm2", "zs2", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("accuracy"))
    assert line.split()[2:5] == ["0.8000", "0.2000", "+0.6000"] and line.endswith("A better")
    assert "40 paired examples" in out and line.split()[-3] == "0.0005"  # 1 / (2000 + 1): no resample reaches 0
    compare.main(["pp2", "zs2", "--results", str(results), "--metric", "accuracy"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("accuracy"))
    assert "+0.0000" in line and "1.0000" in line and line.endswith("n.s.")  # identical outputs


def test_compare_refuses_task_mismatch_and_other_ids(results):
    with pytest.raises(SystemExit) as err:
        compare.main(["bm2", "zs3", "--results", str(results)])
    assert "not comparable" in str(err.value.code) and "'LaMP_2' vs 'LaMP_3'" in str(err.value.code)
    with pytest.raises(SystemExit) as err:
        compare.main(["su3", "zs3", "--results", str(results)])
    assert "different examples" in str(err.value.code) and "20 vs 30 ids" in str(err.value.code)


def test_runs_file_problems(tmp_path):
    good = json.dumps({"run_id": "a", "status": "finished", "task": "LaMP_2", "method": "m", "metrics": {}, "data": {}})
    with pytest.raises(FileNotFoundError, match="no runs file"):
        run_rows.load_rows(tmp_path)
    (tmp_path / "runs.jsonl").write_text(good + "\n" + '{"run_id": "b", "sta')  # interrupted append
    assert [r["run_id"] for r in run_rows.load_rows(tmp_path)] == ["a"]  # benchmark.runs.provenance skips the torn line
    (tmp_path / "runs.jsonl").write_text(good + "\n" + json.dumps({"run_id": "c", "status": "finished"}) + "\n")
    with pytest.raises(ValueError, match=r"row 2 \(run 'c'\) lacks task, method, metrics, data"):
        run_rows.load_rows(tmp_path)


def test_committed_fixture_matches_its_builder(tmp_path):
    spec = importlib.util.spec_from_file_location("runs_fixture_build", FIXTURE / "build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    builder.build(tmp_path)
    assert (tmp_path / "runs.jsonl").read_text() == (FIXTURE / "runs.jsonl").read_text()
    assert (tmp_path / "runs/pp2/samples.jsonl").read_text() == (FIXTURE / "runs/pp2/samples.jsonl").read_text()
