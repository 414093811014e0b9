"""The grid's progress display (benchmark/runs/progress.py): ETA from the recorded cost of similar rows, quiet
without a terminal."""
from __future__ import annotations

import io

from benchmark.runs.progress import GridProgress, fmt_duration, similar_cost


def _row(task, method, total_s, variant="", profile="cpu", limit=25, status="finished"):
    return {"task": task, "method": method, "variant": variant, "profile": profile, "status": status,
            "data": {"limit": limit}, "timings": {"total_s": total_s}}


ROWS = [_row("LaMP_2", "zeroshot", 10.0), _row("LaMP_2", "zeroshot", 20.0), _row("LaMP_2", "zeroshot", 500.0, limit=50),
        _row("LaMP_3", "bm25", 40.0), _row("LaMP_2", "bm25", 999.0, profile="paper"),
        _row("LaMP_2", "oppu", 7.0, status="failed")]


def test_similar_cost_takes_the_closest_level_that_has_rows():
    assert similar_cost(ROWS, "LaMP_2", "zeroshot", "", "cpu", 25) == 15.0     # same task, method, profile, cap
    assert similar_cost(ROWS, "LaMP_2", "zeroshot", "", "cpu", 10) == 20.0     # any cap: median of 10, 20, 500
    assert similar_cost(ROWS, "LaMP_2", "bm25", "", "cpu", 25) == 40.0        # same method and profile, other task
    assert similar_cost(ROWS, "LaMP_2", "oppu", "", "cpu", 25) is None        # failed rows cost nothing known


def test_grid_eta_counts_what_is_left():
    plan = [("LaMP_2", "zeroshot", ""), ("LaMP_2", "bm25", ""), ("LaMP_2", "oppu", "")]
    out = io.StringIO()
    grid = GridProgress(plan, ROWS, "cpu", 25, enabled=True, file=out)
    assert grid.estimates == [15.0, 40.0, 27.5] and grid.unknown == 1         # oppu: the median of the others
    assert grid.remaining_s() == 82.5
    grid.start(0, "[1/3] LaMP_2 zeroshot")
    assert 67.5 <= grid.remaining_s() <= 82.5
    grid.finish()
    assert grid.remaining_s() == 67.5
    grid.log("[1/3] LaMP_2 zeroshot: n=25")
    grid.close()
    text = out.getvalue()
    assert "1/3 runs" in text and "grid ETA ~1m08s" in text and "1 unmatched run(s) at the median" in text
    assert "[1/3] LaMP_2 zeroshot: n=25" in text


def test_rows_of_this_grid_inform_later_runs():
    grid = GridProgress([("LaMP_2", "pplug", ""), ("LaMP_3", "pplug", "")], [], "cpu", 25, enabled=False)
    assert grid.estimates == [None, None] and grid.remaining_s() is None
    grid.start(0, "[1/2] LaMP_2 pplug")
    grid.record(_row("LaMP_2", "pplug", 600.0))
    grid.finish()
    assert grid.estimates == [0.0, 600.0] and grid.unknown == 0 and grid.remaining_s() == 600.0


def test_quiet_without_a_terminal(capsys):
    grid = GridProgress([("LaMP_2", "zeroshot", "")], [], "cpu")   # pytest captures: not a terminal
    assert not grid.active and grid.eta() == "ETA: no recorded row to estimate from"
    grid.start(0, "[1/1] LaMP_2 zeroshot")
    grid.log("[1/1] LaMP_2 zeroshot: done")
    grid.finish()
    grid.close()
    captured = capsys.readouterr()
    assert captured.out == "[1/1] LaMP_2 zeroshot: done\n" and captured.err == ""
    assert fmt_duration(3725) == "1h02m" and fmt_duration(65) == "1m05s" and fmt_duration(4) == "4s"
