"""Score a LaMP predictions file against a gold outputs file, like LaMP's ``eval/eval_task.py``.

    python -m benchmark.scoring.score --golds_json dev_outputs.json --preds_json preds.json --task_name LaMP_2 \
        [--output_file scores.json]

Both files use the official outputs format (LaMP's README): ``{"task": "LaMP_k", "golds": [{"id", "output"}]}``.
The checks are the official ones made explicit: the task names must match ``--task_name`` (a task's declared
aliases are accepted, e.g. old LaMP-2N files that say "LaMP_2"), and the prediction ids must be exactly the gold
ids. We also reject duplicate ids, which the official set comparison silently ignores. Any problem is one line
on stderr naming the file and the problem, and exit code 2. The scores use :mod:`benchmark.scoring.metrics` (official
semantics); the printed JSON has the official keys plus ``n`` and ``n_unparsable``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from benchmark.scoring.metrics import score
from benchmark.data.tasks import load_task

EXIT_INPUT_ERROR = 2
SHOW_IDS = 5


class ScoreInputError(Exception):
    """A problem with an input file; the message names the file."""


def _first(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in sorted(ids)[:SHOW_IDS])
    return shown + (", ..." if len(ids) > SHOW_IDS else "")


def read_outputs(path: str | Path) -> tuple[str, list[str], list[str]]:
    """(task, ids, outputs) of an official-format outputs file; ScoreInputError on any format problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoreInputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScoreInputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("task"), str) or not isinstance(data.get("golds"), list):
        raise ScoreInputError(f'{path}: expected an object {{"task": str, "golds": [{{"id", "output"}}, ...]}}')
    ids, outputs = [], []
    for k, rec in enumerate(data["golds"]):
        if not isinstance(rec, dict) or "id" not in rec or "output" not in rec:
            raise ScoreInputError(f'{path}: golds[{k}] is not an object with "id" and "output"')
        out = rec["output"]
        if isinstance(out, bool) or not isinstance(out, (str, int, float)):
            raise ScoreInputError(f"{path}: id {rec['id']!r} has a non-text output {out!r}")
        ids.append(str(rec["id"]))
        outputs.append(str(out))
    dups = sorted(i for i, c in Counter(ids).items() if c > 1)
    if dups:
        raise ScoreInputError(f"{path}: {len(dups)} duplicate id(s): {_first(dups)}")
    return data["task"], ids, outputs


def score_files(golds_json: str | Path, preds_json: str | Path, task_name: str) -> dict[str, Any]:
    """Official aggregates plus ``n`` and ``n_unparsable``; ScoreInputError on any input problem."""
    try:
        spec = load_task(task_name)
    except KeyError as e:
        raise ScoreInputError(f"--task_name: {e.args[0]}") from None
    gold_task, gold_ids, golds = read_outputs(golds_json)
    pred_task, pred_ids, preds = read_outputs(preds_json)
    for path, task in ((golds_json, gold_task), (preds_json, pred_task)):
        if not spec.accepts_task_name(task):
            raise ScoreInputError(f"{path}: task is {task!r} but --task_name is {task_name!r}")
    missing = set(gold_ids) - set(pred_ids)
    extra = set(pred_ids) - set(gold_ids)
    if missing or extra:
        parts = [f"{len(missing)} gold id(s) missing (first: {_first(list(missing))})"] if missing else []
        parts += [f"{len(extra)} id(s) not in the golds (first: {_first(list(extra))})"] if extra else []
        raise ScoreInputError(f"{preds_json}: ids differ from {golds_json}: " + "; ".join(parts))
    by_id = dict(zip(pred_ids, preds))
    try:
        result = score(spec, [by_id[i] for i in gold_ids], golds, ids=gold_ids)
    except ValueError as e:
        raise ScoreInputError(f"{golds_json}: {e}") from None
    return {**result.aggregates, "n": result.n, "n_unparsable": result.n_unparsable}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.scoring.score", description=__doc__.split("\n")[0])
    p.add_argument("--golds_json", required=True, help="official outputs file with the gold answers")
    p.add_argument("--preds_json", required=True, help="predictions in the same format")
    p.add_argument("--task_name", required=True, help="LaMP_1 ... LaMP_7, LaMP_2N")
    p.add_argument("--output_file", default=None, help="also write the scores JSON here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = score_files(args.golds_json, args.preds_json, args.task_name)
    except ScoreInputError as e:
        print(f"benchmark.scoring.score: error: {e}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    text = json.dumps(result, indent=2)
    print(text)
    if args.output_file:
        out = Path(args.output_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
