"""Reading and validating official LaMP files into :class:`~benchmark.data.example.Example` lists.

A LaMP split is two files in a task folder (LaMP's README and ``eval/evaluation.py``):

    <root>/<spec.folder>/{split}_questions.json            flat layout (LaMP-mini, ``make data``)
    <root>/<spec.folder>/{split}/{split}_questions.json    nested layout (the official download tree)

``{split}_questions.json`` is a JSON list of ``{"id", "input", "profile": [{"id", <task fields>...}], "user_id"}``;
``{split}_outputs.json`` is ``{"task": "LaMP_k", "golds": [{"id", "output"}]}``. The official test split ships
without outputs: such a split is *predict-only* (every gold is ``None``).

Every problem is a :class:`LampFormatError` naming the file, the record id (or its index when the id is the
problem) and what is wrong, because a silently mis-joined gold moves every number in a leaderboard. The
official scorer asserts that prediction ids equal gold ids; we check the same for questions vs outputs.
Ids are strings everywhere (ints are coerced, as LaMP's own files mix both in third-party dumps).

Each file is read once as bytes: the sha256 that goes into a run's provenance is of exactly the bytes parsed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.cache.store import sha256_bytes
from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec

MAX_NAMED = 5  # how many offending ids an error message lists


class LampFormatError(ValueError):
    """A LaMP file is malformed; the message names the file, the record and the problem."""


@dataclass
class SplitData:
    examples: list[Example]
    files: dict[str, str] = field(default_factory=dict)  # path relative to the root (posix) -> sha256
    has_outputs: bool = True


# ---------------------------------------------------------------------------------------------- hashing
def data_digest(files: dict[str, str]) -> str:
    """One sha256 over a ``{relative path: sha256}`` mapping (order-independent): the data identity of a run."""
    canon = json.dumps(dict(sorted(files.items())), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(canon.encode())


def ids_digest(ids: list[str]) -> str:
    """sha256 of an ordered id list (records *which* questions a capped run evaluated)."""
    return sha256_bytes("\n".join(ids).encode())


# ---------------------------------------------------------------------------------------------- locating
def split_paths(root: Path, spec: TaskSpec, split: str) -> tuple[Path, Path | None]:
    """``(questions, outputs or None)`` for a split, flat layout first, then nested.

    Raises FileNotFoundError naming every path tried."""
    root = Path(root)
    tried = [root / spec.folder / f"{split}_questions.json", root / spec.folder / split / f"{split}_questions.json"]
    for q in tried:
        if q.is_file():
            out = q.with_name(f"{split}_outputs.json")
            return q, (out if out.is_file() else None)
    raise FileNotFoundError(f"task {spec.name}, split {split!r}: no questions file; tried "
                            + ", ".join(str(p) for p in tried))


def has_split(root: Path, spec: TaskSpec, split: str) -> bool:
    try:
        split_paths(root, spec, split)
        return True
    except FileNotFoundError:
        return False


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()  # paths are built from root: no resolve (symlinked files stay)


def _load_json(path: Path) -> tuple[Any, str]:
    data = path.read_bytes()
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise LampFormatError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise LampFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return obj, sha256_bytes(data)


def _as_id(value: Any, path: Path, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LampFormatError(f"{path}: {where}: id must be a string (or an int), got {type(value).__name__} "
                              f"{value!r}")
    return str(value)


def _sample(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:MAX_NAMED])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > MAX_NAMED else "")


# ---------------------------------------------------------------------------------------------- questions
def _parse_profile(items: Any, spec: TaskSpec, path: Path, qid: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(items, list):
        raise LampFormatError(f"{path}: record {qid!r}: 'profile' must be a list, got {type(items).__name__}")
    need = ["id", *spec.profile_fields]
    out = []
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            raise LampFormatError(f"{path}: record {qid!r}: profile item {j} is a {type(item).__name__}, "
                                  f"not an object")
        missing = [f for f in need if f not in item]
        if missing:
            pid = item.get("id", f"#{j}")
            raise LampFormatError(f"{path}: record {qid!r}: profile item {pid!r} (position {j}) is missing "
                                  f"field(s) {missing}; task {spec.name} needs {need}")
        if not isinstance(item["id"], str):
            item = {**item, "id": _as_id(item["id"], path, f"record {qid!r}, profile item {j}")}
        out.append(item)
    return tuple(out)


def parse_questions(obj: Any, spec: TaskSpec, path: Path) -> list[tuple[str, str, str, tuple[dict, ...]]]:
    """Validate a questions list; ``[(id, user_id, input, profile)]`` in file order."""
    if not isinstance(obj, list):
        raise LampFormatError(f"{path}: top level must be a JSON list of questions, got {type(obj).__name__}")
    rows, seen = [], {}
    for i, rec in enumerate(obj):
        if not isinstance(rec, dict):
            raise LampFormatError(f"{path}: record at index {i} is a {type(rec).__name__}, not an object")
        if "id" not in rec:
            raise LampFormatError(f"{path}: record at index {i}: missing field 'id'")
        qid = _as_id(rec["id"], path, f"record at index {i}")
        for name in ("input", "profile"):
            if name not in rec:
                raise LampFormatError(f"{path}: record {qid!r} (index {i}): missing field {name!r}")
        if not isinstance(rec["input"], str):
            raise LampFormatError(f"{path}: record {qid!r} (index {i}): 'input' must be a string, "
                                  f"got {type(rec['input']).__name__}")
        if qid in seen:
            raise LampFormatError(f"{path}: duplicate question id {qid!r} at indices {seen[qid]} and {i}")
        seen[qid] = i
        user = rec.get("user_id", "")
        user = "" if user is None else _as_id(user, path, f"record {qid!r} user_id")
        rows.append((qid, user, rec["input"], _parse_profile(rec["profile"], spec, path, qid)))
    return rows


# ---------------------------------------------------------------------------------------------- outputs
def parse_outputs(obj: Any, spec: TaskSpec, path: Path) -> dict[str, str]:
    """Validate an outputs object; ``{id: gold}`` in file order."""
    if not isinstance(obj, dict) or "task" not in obj or "golds" not in obj:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise LampFormatError(f'{path}: top level must be {{"task": ..., "golds": [...]}}, got {got}')
    if not spec.accepts_task_name(str(obj["task"])):
        accepted = [spec.name, *spec.aliases]
        raise LampFormatError(f"{path}: task is {obj['task']!r} but this reader is for {spec.name} "
                              f"(accepts {accepted})")
    if not isinstance(obj["golds"], list):
        raise LampFormatError(f"{path}: 'golds' must be a list, got {type(obj['golds']).__name__}")
    golds: dict[str, str] = {}
    for i, rec in enumerate(obj["golds"]):
        if not isinstance(rec, dict) or "id" not in rec:
            raise LampFormatError(f"{path}: gold at index {i}: must be an object with 'id' and 'output'")
        gid = _as_id(rec["id"], path, f"gold at index {i}")
        if "output" not in rec:
            raise LampFormatError(f"{path}: gold {gid!r} (index {i}): missing field 'output'")
        out = rec["output"]
        if isinstance(out, int) and not isinstance(out, bool):
            out = str(out)
        if not isinstance(out, str):
            raise LampFormatError(f"{path}: gold {gid!r} (index {i}): 'output' must be a string, "
                                  f"got {type(out).__name__}")
        if gid in golds:
            raise LampFormatError(f"{path}: duplicate gold id {gid!r} (second at index {i})")
        if spec.has_labels and out not in spec.labels:
            raise LampFormatError(f"{path}: gold {gid!r} (index {i}): output {out!r} is not one of the "
                                  f"{spec.name} labels {spec.labels}")
        golds[gid] = out
    return golds


def check_same_ids(questions: list[str], golds: dict[str, str], q_path: Path, o_path: Path) -> None:
    qset = set(questions)
    if qset == golds.keys():
        return
    missing = [i for i in questions if i not in golds]
    extra = [i for i in golds if i not in qset]
    parts = []
    if missing:
        parts.append(f"{len(missing)} question id(s) have no gold: {_sample(missing)}")
    if extra:
        parts.append(f"{len(extra)} gold id(s) have no question: {_sample(extra)}")
    raise LampFormatError(f"{o_path}: ids do not match {q_path.name}: " + "; ".join(parts))


# ---------------------------------------------------------------------------------------------- entry
def read_split(root: Path | str, spec: TaskSpec, split: str) -> SplitData:
    """Read and validate one split of one task; questions joined to golds by id, file order kept."""
    root = Path(root)
    q_path, o_path = split_paths(root, spec, split)
    q_obj, q_sha = _load_json(q_path)
    rows = parse_questions(q_obj, spec, q_path)
    files = {_rel(q_path, root): q_sha}
    golds: dict[str, str] | None = None
    if o_path is not None:
        o_obj, o_sha = _load_json(o_path)
        golds = parse_outputs(o_obj, spec, o_path)
        check_same_ids([r[0] for r in rows], golds, q_path, o_path)
        files[_rel(o_path, root)] = o_sha
    examples = [Example(id=qid, user_id=user, input=text, profile=profile,
                        gold=None if golds is None else golds[qid])
                for qid, user, text, profile in rows]
    return SplitData(examples=examples, files=files, has_outputs=golds is not None)
