"""The results site (benchmark/report/site.py) on the hand-built fixture results dir, and in a real browser.

The fixture (tests/fixtures/runs_fixture) is copied to a temp dir and given what the committed fixture lacks: a
Lightning CSV log and a prompts.jsonl for one run, so the curves and the prompt column are exercised too.
The browser test drives the Debian ``chromium`` through ``chromedriver`` (Selenium) and is skipped, with the
reason, where either is missing.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from benchmark.report import browser, leaderboard as lb
from benchmark.report.rows import load_rows
from benchmark.report.site import build
from benchmark.contract.trainlog import read_curves

FIXTURE = Path(__file__).parent / "fixtures" / "runs_fixture"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path, dict]:
    results = tmp_path_factory.mktemp("results")
    shutil.copyfile(FIXTURE / "runs.jsonl", results / "runs.jsonl")
    shutil.copytree(FIXTURE / "runs", results / "runs")
    logs = results / "runs" / "pp2" / "logs" / "plug"
    logs.mkdir(parents=True)
    (logs / "metrics.csv").write_text("epoch,lr,step,train_loss,val_loss\n0,0.0001,0,4.0,\n0,0.00009,1,3.0,\n"
                                      "0,,1,,2.5\n0,0.00008,2,2.0,\n", encoding="utf-8")
    samples = [json.loads(x) for x in (results / "runs" / "zs2" / "samples.jsonl").read_text().splitlines()]
    (results / "runs" / "zs2" / "prompts.jsonl").write_text(
        "".join(json.dumps({"id": s["id"], "prompt": f"<b>tag</b> the movie {s['id']}"}) + "\n" for s in samples))
    info = build(results, results / "site", n_boot=200)
    return results, results / "site", info


def test_pages_for_every_shown_row_and_pair(site):
    results, out, info = site
    shown = lb.select_rows(load_rows(results))
    assert info["runs"] == len(shown) == 9  # LaMP_2: 4 rows, LaMP_3: 5 (old bm25, cancelled, failed left out)
    for row in shown:
        assert (out / "runs" / f"{row['run_id']}.html").is_file()
    assert not (out / "runs" / "old2.html").exists()
    index = (out / "index.html").read_text()
    assert index.count('<table class="sortable') == 3  # LaMP_2, LaMP_3, summary
    assert "0.800 [" in index and "†" in index  # the row's own value and CI; bm25 differs from zeroshot
    assert "not tested" in index  # LaMP_3 summary scored other ids: its tests are skipped with a note
    assert list((out / "plots").glob("*.png"))
    pairs = list((out / "compare").glob("*.html"))
    assert len(pairs) == info["pairs"] > 0
    assert info["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def test_run_page_lists_questions_prompts_and_curves(site):
    results, out, _ = site
    zs = (out / "runs" / "zs2.html").read_text()
    assert zs.count('<tr data-user=') == 40
    assert zs.count('data-wrong="1"') == 32  # zeroshot is right on 8 of 40
    assert "&lt;b&gt;tag&lt;/b&gt; the movie 2000" in zs  # prompts from prompts.jsonl, HTML-escaped
    bm = (out / "runs" / "bm2.html").read_text()
    assert "not recorded" in bm and "Training curves" not in bm
    pp = (out / "runs" / "pp2.html").read_text()
    assert "Training curves" in pp and "train_loss" in pp and "val_loss" in pp
    assert "plug" in (out / "training.html").read_text()
    curve = read_curves(results / "runs" / "pp2")[0]
    assert curve.series["train_loss"] == [(0, 4.0), (1, 3.0), (2, 2.0)] and curve.series["val_loss"] == [(1, 2.5)]


def test_compare_page_runs_the_paired_test(site):
    _, out, _ = site
    index = (out / "compare.html").read_text()
    href = re.search(r'href="(compare/[0-9a-f]+\.html)">bm25 \(k=4\)</a></td><td>zeroshot</td>', index).group(1)
    page = (out / href).read_text()
    assert "A better" in page  # 0.800 vs 0.200 on 40 paired examples
    assert "Where they disagree (24 of 40; 16 identical)" in page  # zeroshot right on 8, bm25 on 32


def test_deterministic(site, tmp_path):
    results, out, _ = site
    again = build(results, tmp_path / "site", n_boot=200)
    a = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "site"): p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()}
    assert a == b and again["bytes"] == sum(map(len, b.values()))


def test_size_budget_drops_old_question_tables(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results, ignore=shutil.ignore_patterns("build.py"))
    info = build(results, tmp_path / "site", n_boot=50, max_mb=0.0)
    assert info["dropped_questions"] == []  # one section only: the newest always keeps its questions


@pytest.mark.browser
def test_site_in_headless_chromium(site, tmp_path):
    why = browser.missing()
    if why:
        pytest.skip(f"browser test skipped: {why}")
    from selenium.webdriver.common.by import By

    _, out, _ = site
    with browser.chromium() as driver:
        driver.get((out / "index.html").as_uri())
        table = driver.find_element(By.ID, "t-LaMP_2")

        def column(i: int) -> list[str]:
            return [r.find_elements(By.TAG_NAME, "td")[i].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        before = column(2)  # accuracy: reference row first, then LLM rows best first
        header = table.find_elements(By.CSS_SELECTOR, "thead th")[2]
        header.click()
        asc = column(2)
        assert header.get_attribute("aria-sort") == "ascending"
        assert asc == sorted(before, key=lambda t: float(t.split()[0])) and asc != before
        header.click()
        assert column(2) == sorted(before, key=lambda t: -float(t.split()[0]))
        driver.save_screenshot(str(tmp_path / "index.png"))

        driver.get((out / "runs" / "zs2.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#questions tbody tr")
        assert len(rows) == 40 and rows[0].find_elements(By.TAG_NAME, "td")[0].text == "2000"
        driver.find_element(By.ID, "wrong-only").click()
        assert len([r for r in rows if r.is_displayed()]) == 32
        assert driver.find_element(By.ID, "shown-count").text == "32 of 40 shown"
        driver.save_screenshot(str(tmp_path / "run.png"))
    for name in ("index.png", "run.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
