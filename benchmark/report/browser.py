"""Headless Chromium for the results site: the browser test and the README screenshot.

    python -m benchmark.report.browser results/site/index.html docs/img/site.png [--width 1400 --height 1000]

Drives the Debian ``chromium`` through its ``chromedriver`` (package ``chromium-driver``) with Selenium; both
binaries are looked up on PATH (or ``CHROMIUM`` / ``CHROMEDRIVER``), never downloaded: Selenium's own driver
manager is bypassed by passing the driver path. :func:`missing` says what is absent so a test can skip with
that reason.
"""
from __future__ import annotations

import argparse
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def binaries() -> tuple[str | None, str | None]:
    browser = os.environ.get("CHROMIUM") or next((p for b in BROWSERS if (p := shutil.which(b))), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def missing() -> str:
    """Empty when a headless browser can be driven here; else what is missing and how to install it."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -r requirements.txt)"
    browser, driver = binaries()
    if not browser:
        return "no Chromium on PATH (apt-get install chromium)"
    if not driver:
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return ""


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator["object"]:
    """A headless Chromium WebDriver (quit on exit)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    why = missing()
    if why:
        raise RuntimeError(f"benchmark/report/browser.py: cannot start a browser: {why}")
    browser, driver_path = binaries()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(page: Path | str, png: Path | str, width: int = 1400, height: int = 1000) -> Path:
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with chromium(width, height) as driver:
        driver.get(Path(page).resolve().as_uri())
        driver.save_screenshot(str(png))
    return png


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.report.browser", description=__doc__.split("\n")[0])
    ap.add_argument("page", help="an HTML file of the site")
    ap.add_argument("png", help="where to write the screenshot")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    a = ap.parse_args(argv)
    print(f"wrote {screenshot(a.page, a.png, a.width, a.height)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
