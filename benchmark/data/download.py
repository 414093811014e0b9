"""``python -m benchmark.data.download --out data/lamp [--tasks LaMP_1 ...] [--kinds time,user]``: the official files.

URL patterns (LaMP download page, linfeng-du/PURPLE scripts/download.sh):

    user-based   https://ciir.cs.umass.edu/downloads/LaMP/LaMP_{k}/{split}/{split}_{questions|outputs}.json
    time-based   https://ciir.cs.umass.edu/downloads/LaMP/time/LaMP_{k}/{split}/{split}_{questions|outputs}.json

Movie tagging (current LaMP-2) sits under ``LaMP_2/new/`` (for the time-based split that is [unverified]; a
404 there is reported, never silently replaced by the old news-categorisation files). ``test`` has no
outputs (labels are hidden). LaMP-6 is skipped: the official files carry only Avocado ids (LDC2015T03).

Files land where :func:`benchmark.data.sources.official_root` looks: ``<out>/<kind>/LaMP_k/{split}_{...}.json``.
Each file is streamed to a temp file (tqdm bar), hashed and renamed; ``<out>/manifest.json`` records url,
bytes and sha256 per file, and a file whose bytes already match the manifest is not fetched again. Each
task's files are then read back through :func:`benchmark.data.reader.read_split` (an HTML error page fails here).
With no network the command fails fast with one line and exit code 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

from tqdm import tqdm

from benchmark.cache.store import sha256_file
from benchmark.data.reader import LampFormatError, read_split
from benchmark.cache.store import atomic_write_text
from benchmark.data.tasks import load_task

BASE_URL = "https://ciir.cs.umass.edu/downloads/LaMP"
KINDS = ("time", "user")
SPLITS = ("train", "dev", "test")
HIDDEN_GOLDS = ("test",)
# Remote folder of each downloadable task (facts about the server, not task behaviour).
REMOTE_DIRS = {"LaMP_1": "LaMP_1", "LaMP_2": "LaMP_2/new", "LaMP_3": "LaMP_3", "LaMP_4": "LaMP_4",
               "LaMP_5": "LaMP_5", "LaMP_7": "LaMP_7"}
NOT_DOWNLOADABLE = {"LaMP_6": "the official LaMP-6 files carry only Avocado ids; rebuilding them needs the "
                              "LDC-licensed corpus LDC2015T03. Use the LaMP-mini stand-in."}
DEFAULT_TASKS = ("LaMP_1", "LaMP_2", "LaMP_3", "LaMP_4", "LaMP_5", "LaMP_6", "LaMP_7")
CHUNK = 1 << 16


class Unreachable(RuntimeError):
    pass


def file_plan(kind: str, task: str, base_url: str = BASE_URL) -> list[tuple[str, str]]:
    """``[(url, path relative to --out)]`` for one (kind, task)."""
    remote = ("time/" if kind == "time" else "") + REMOTE_DIRS[task]
    plan = []
    for split in SPLITS:
        for what in ("questions",) if split in HIDDEN_GOLDS else ("questions", "outputs"):
            name = f"{split}_{what}.json"
            plan.append((f"{base_url.rstrip('/')}/{remote}/{split}/{name}", f"{kind}/{task}/{name}"))
    return plan


def check_reachable(base_url: str, timeout: float) -> None:
    """Open a TCP connection to the host (no data fetched); raise :class:`Unreachable` with the reason."""
    parsed = urlparse(base_url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise Unreachable(f"{type(e).__name__}: {e}") from None


def fetch(url: str, dest: Path, timeout: float) -> tuple[str, int]:
    """Stream ``url`` into ``dest`` atomically; returns (sha256, bytes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, n = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.as_posix()[-48:], leave=False) as bar:
                while block := resp.read(CHUNK):
                    f.write(block)
                    h.update(block)
                    n += len(block)
                    bar.update(len(block))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return h.hexdigest(), n


def load_manifest(out: Path) -> dict:
    path = out / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {"base_url": BASE_URL, "files": {}, "skipped": {}}


def download(out: Path, tasks: Sequence[str], kinds: Sequence[str], base_url: str = BASE_URL,
             timeout: float = 10.0, verify: bool = True) -> list[str]:
    """Download every file of ``tasks`` x ``kinds``; returns the failures (empty = all good)."""
    check_reachable(base_url, timeout)
    manifest = load_manifest(out)
    manifest["base_url"] = base_url
    failures: list[str] = []
    for task in tasks:
        if task in NOT_DOWNLOADABLE:
            print(f"{task}: skipped: {NOT_DOWNLOADABLE[task]}", file=sys.stderr)
            manifest["skipped"][task] = NOT_DOWNLOADABLE[task]
            continue
        for kind in kinds:
            ok = True
            for url, rel in file_plan(kind, task, base_url):
                dest, known = out / rel, manifest["files"].get(rel)
                if known and dest.is_file() and sha256_file(dest) == known["sha256"]:
                    continue
                try:
                    sha, n = fetch(url, dest, timeout)
                except (urllib.error.URLError, OSError) as e:
                    failures.append(f"{url}: {getattr(e, 'reason', e)}")
                    ok = False
                    continue
                manifest["files"][rel] = {"url": url, "bytes": n, "sha256": sha}
                atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
            if ok and verify:
                failures += _verify(out / kind, task)
            print(f"{kind}/{task}: {'ok' if ok else 'incomplete'}", file=sys.stderr)
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    return failures


def _verify(root: Path, task: str) -> list[str]:
    spec, bad = load_task(task), []
    for split in SPLITS:
        try:
            data = read_split(root, spec, split)
            print(f"  {task} {split}: {len(data.examples)} questions", file=sys.stderr)
        except (LampFormatError, FileNotFoundError) as e:
            bad.append(str(e))
    return bad


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.download", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/lamp"), help="target root (default data/lamp)")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="LaMP_1 ... LaMP_7 (LaMP_6 skipped)")
    p.add_argument("--kinds", default="time,user", help="comma list of split kinds: time,user (default both)")
    p.add_argument("--base-url", default=BASE_URL, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=10.0, help="connect/read timeout in seconds")
    p.add_argument("--no-verify", action="store_true", help="skip reading the files back through the reader")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS] + [t for t in args.tasks
                                                  if t not in REMOTE_DIRS and t not in NOT_DOWNLOADABLE]
    if bad:
        print(f"download: unknown kind/task {bad}; kinds {list(KINDS)}, tasks {list(DEFAULT_TASKS)}", file=sys.stderr)
        return 2
    host = urlparse(args.base_url).hostname or args.base_url
    try:
        failures = download(args.out, args.tasks, kinds, args.base_url, args.timeout, not args.no_verify)
    except Unreachable as e:
        print(f"make data: cannot reach {host} ({e}); the official LaMP files need internet. "
              f"Use DATA=mini or DATA=synthetic.", file=sys.stderr)
        return 1
    for line in failures:
        print(f"download: FAILED {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
