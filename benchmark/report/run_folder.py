"""What the results site reads from one run folder: sample records (+ prompts), resolved config, provenance and
the Lightning training curves (``benchmark.contract.trainlog``), shaped for the run page's template."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

import yaml

from benchmark.contract.trainlog import METRICS as CURVE_METRICS, read_curves
from benchmark.report import leaderboard as lb
from benchmark.report.rows import samples_path

PROMPTS_FILE = "prompts.jsonl"  # per run: {"id", "prompt"} lines (written by record(); older runs have none)
PER_EXAMPLE = {"classification": ("correct", True), "rating": ("abs_err", False)}  # else the headline metric


def read_records(results: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's sample records in file order, with ``prompt`` filled from ``prompts.jsonl`` when present."""
    path = samples_path(results, row)
    if not path.exists():
        return []
    recs = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not a JSON sample record ({e})") from None
    prompts_file = path.parent / PROMPTS_FILE
    if prompts_file.exists():
        prompts = {}
        for i, line in enumerate(prompts_file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rec = json.loads(line)
                if "id" not in rec or "prompt" not in rec:
                    raise ValueError(f"{prompts_file}:{i}: a prompt record needs 'id' and 'prompt'")
                prompts[str(rec["id"])] = rec["prompt"]
        for r in recs:
            r.setdefault("prompt", prompts.get(str(r.get("id"))))
    return recs


def example_score(kind: str, headline: str, scores: dict[str, Any]) -> tuple[float | None, bool]:
    """(the per-example value shown, whether the example is 'wrong': below the best value an example can get)."""
    key, hib = PER_EXAMPLE.get(kind, (headline, True))
    v = scores.get(key)
    if v is None:
        return None, False
    v = float(v)
    return v, (v < 1.0) if hib else (v > 0.0)


def question_rows(recs: Sequence[dict[str, Any]], kind: str, headline: str) -> list[dict[str, Any]]:
    out = []
    for r in recs:
        v, wrong = example_score(kind, headline, r.get("scores") or {})
        raw, final = r.get("raw_output"), r.get("output")
        out.append({"id": str(r.get("id")), "user": str(r.get("user_id", "")), "prompt": r.get("prompt"),
                    "raw": raw, "raw_same": raw == final, "output": final, "gold": r.get("gold"),
                    "score": "–" if v is None else f"{v:.3g}", "score_sort": "" if v is None else v,
                    "wrong": wrong, "scores": json.dumps(r.get("scores") or {}, sort_keys=True)})
    return out


def config_text(results: Path, row: dict[str, Any]) -> str:
    path = results / "runs" / row["run_id"] / "config.yaml"
    if path.exists():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(row.get("config") or {}, sort_keys=False) if row.get("config") else "not recorded"


def provenance(row: dict[str, Any]) -> list[tuple[str, str]]:
    d, git = row.get("data") or {}, row.get("git") or {}
    commit = f"{git.get('commit', '?')}{' (dirty, diff sha256 ' + str(git.get('diff_sha256')) + ')' if git.get('dirty') else ''}"
    out = [("run id", row["run_id"]), ("status", row.get("status", "?")), ("task", f"{row['task']} v{row.get('task_version', '?')}"),
           ("method", lb.label(row)), ("group", lb.group_of(row)), ("profile", str(row.get("profile"))),
           ("answer mode", str(row.get("answer_mode"))), ("commit", commit), ("config hash", str(row.get("config_hash"))),
           ("data", f"{d.get('source')} (root {d.get('root')}), eval split {d.get('eval_split')}, train split "
                    f"{d.get('train_split')}"),
           ("data digest", str(d.get("digest"))), ("evaluated ids sha256", str(d.get("ids_sha256"))),
           ("questions", f"{row.get('n')} of {d.get('n_available')} (cap {d.get('limit')}), {row.get('n_users')} users; "
                         f"{row.get('n_train')} training questions"),
           ("seed", str(row.get("seed"))), ("finished at", str(row.get("finished_at")))]
    for part in ("backbone", "embedder"):
        m = row.get(part)
        out.append((part, "none loaded" if not m else ", ".join(f"{k} {v}" for k, v in m.items())))
    pk = row.get("packages") or {}
    out.append(("packages", ", ".join(f"{k} {v}" for k, v in sorted(pk.items())) or "not recorded"))
    host = row.get("host") or {}
    out.append(("host", ", ".join(f"{k} {v}" for k, v in host.items()) or "not recorded"))
    return out


MAX_SEPARATE = 3  # more trainings of one kind than this (OPPU's per-user LoRAs) share one chart per metric


def curves(results: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's Lightning logs as small charts: one per (training, metric); many per-user trainings overlaid."""
    logged = read_curves(results / "runs" / row["run_id"])
    users = [c for c in logged if c.name.startswith("user-")]
    groups = [(c.name, [c]) for c in logged if c not in users or len(users) <= MAX_SEPARATE]
    if len(users) > MAX_SEPARATE:
        groups.append((f"per-user trainings ({len(users)} users, overlaid)", users))
    out = []
    for name, members in groups:
        charts = []
        for m in CURVE_METRICS:
            series = [c.series[m] for c in members if c.series.get(m)]
            if series:
                last = [c.last(m) for c in members if c.series.get(m)]
                charts.append({"metric": m, "svg": svg_curve(series),
                               "last": statistics.median(last), "lines": len(series)})
        if charts:
            out.append({"name": name, "charts": charts})
    return out


def svg_curve(series: list[list[tuple[int, float]]], width: int = 320, height: int = 120, pad: int = 28) -> dict[str, Any]:
    """Polyline coordinates of one or more series on shared axes, for a small inline SVG chart (the template
    draws the frame and labels)."""
    pts = [p for s in series for p in s]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    sx = (width - 2 * pad) / ((x1 - x0) or 1)
    sy = (height - 2 * pad) / ((y1 - y0) or 1)
    lines = [[(round(pad + (x - x0) * sx, 1), round(height - pad - (y - y0) * sy, 1)) for x, y in s] for s in series]
    return {"lines": lines, "width": width, "height": height, "pad": pad, "x0": x0, "x1": x1, "y0": y0, "y1": y1,
            "n": len(pts)}
