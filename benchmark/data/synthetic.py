"""A tiny, deterministic LaMP-format pack with planted per-user preferences, for tests and smoke runs.

Why: unit and end-to-end tests need data that (a) has the exact official layout and schema, so it goes through
the same reader as the real files, (b) is small enough for tiny random models on 2 CPU cores, and (c) makes
personalisation *measurably* useful, so a test can tell a method that reads the profile from one that ignores
it. Nothing here is real text; no number from it belongs in a leaderboard.

What is planted is chosen from the task spec, never from the task name (``recipe_of``):

* ``label``  (the spec has labels and its ``answer_field`` names the profile field holding them: LaMP-2
  tag, LaMP-2N category, LaMP-3 score). Each user has a favourite label; it is the gold of ~80% of the user's questions and the label
  of ~80% of their profile items. Other draws are uniform for classification, and +-1 label for ``rating``
  (a user-specific rating bias). So "the user's majority profile label" beats "the global majority label".
* ``choice`` (the input template has one query field plus one candidate field per label: LaMP-1's title,
  ref1, ref2 for [1], [2]). Each user has topic words that fill their
  profile items and query; the correct candidate shares the user's topic words, the others use another
  user's. The gold is the label of the correct slot (position seeded).
* ``signature`` (generation: LaMP-4/5/6/7). Each user has a two-word signature phrase that opens every
  output: the gold and the profile items' output field (the spec's ``answer_field``, else the last profile
  field). The rest of the output restates the input's content
  (article, abstract, email, neutral tweet), so copying the input scores some ROUGE and adding the signature
  scores more.

Layout (official, flat; time-based as in the LaMP time split / Persona-Plug): each user has one timeline of
3-4 + 5 items, oldest first. The last item is the ``test`` question, the one before it ``dev``, the three
before that ``train``; a question's profile is every item strictly before it (3-8 items). ``test`` is written
**without** an outputs file, like the official release, so the predict-only path is exercised; evaluate on
``dev``. Ids: question ``2UUUTTT``, profile item ``1UUUTTT`` (user, timeline position), so they never collide.

``write_synthetic(root, seed)`` writes every shipped task atomically and is idempotent (byte-identical
output for the same seed; unchanged files are not rewritten).
"""
from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

from benchmark.cache.store import atomic_write_bytes, sha256_bytes
from benchmark.data.tasks import TaskSpec, load_task, render, task_names

VERSION = 1
P_PLANTED = 0.8      # probability that an item follows the user's planted preference
N_TRAIN = 3          # train questions per user
MANIFEST = "synthetic.json"

TOPIC_WORDS = (
    "river garden music winter castle robot ocean forest planet engine market island mountain desert "
    "train bridge library kitchen festival harbor comet violin glacier canyon lantern meadow orbit "
    "pepper quartz rocket saddle tunnel velvet walnut yacht zebra anchor beacon cactus dolphin falcon "
    "granite harvest ivory jungle kettle lagoon marble nectar"
).split()
SIGNATURE_WORDS = (
    "breaking wow indeed truly behold alas hooray simply frankly honestly certainly oddly "
    "sadly finally clearly boldly quietly"
).split()
FILLERS = ("a tale of", "notes on", "all about the", "thinking of", "the story of", "a look at")


def template_fields(template: str) -> list[str]:
    """Field names of a ``str.format`` template, in order of first appearance."""
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return list(dict.fromkeys(names))


def output_field(spec: TaskSpec) -> str:
    """The profile field that holds what the task asks to produce: ``answer_field``, else the last profile field
    (LaMP-1's profile items carry no answer; its ``abstract`` is filled like an output)."""
    return spec.answer_field or spec.profile_fields[-1]


def recipe_of(spec: TaskSpec) -> str:
    """``signature`` for generation; ``choice`` when the input carries one candidate slot per label; else
    ``label`` (the label is a profile field)."""
    if not spec.has_labels:
        return "signature"
    if len(template_fields(spec.input_template)) == 1 + len(spec.labels):
        return "choice"
    if spec.answer_field not in spec.profile_fields:
        raise ValueError(f"task {spec.name}: cannot plant labels: answer_field {spec.answer_field!r} "
                         f"is not one of the profile fields {spec.profile_fields}")
    return "label"


# ---------------------------------------------------------------------------------------------- text
def _content(rng: random.Random, words: list[str]) -> str:
    picked = rng.sample(words, k=min(3, len(words)))
    return f"{rng.choice(FILLERS)} {picked[0]} and {picked[1]} near the {picked[2]}"


class _User:
    def __init__(self, u: int, rng: random.Random, topics: list[str], labels: list[str]):
        self.u = u
        self.id = f"synth-user-{u}"
        self.topics = topics
        self.n_items = rng.choice((3, 4)) + N_TRAIN + 2
        self.favourite = labels[u % len(labels)] if labels else ""
        sig = SIGNATURE_WORDS
        self.signature = f"{sig[(2 * u) % len(sig)]} {sig[(2 * u + 1) % len(sig)]}"


def _label(rng: random.Random, spec: TaskSpec, favourite: str) -> str:
    if rng.random() < P_PLANTED:
        return favourite
    if spec.kind == "rating":  # a biased rater: off by one step from the usual score
        i = spec.labels.index(favourite)
        near = [spec.labels[j] for j in (i - 1, i + 1) if 0 <= j < len(spec.labels)]
        return rng.choice(near)
    return rng.choice(spec.labels)


def _item(rng: random.Random, spec: TaskSpec, recipe: str, user: _User, other: _User) -> dict[str, Any]:
    """One timeline item: its profile fields, the input fields when it is a question, and its gold.

    An input field that is also a (non-output) profile field reuses the item's value, so a question's text is
    the same text its item shows in later profiles (as in LaMP's time-based split)."""
    out = output_field(spec)
    fields = {f: _content(rng, user.topics) for f in spec.profile_fields}
    slots = template_fields(spec.input_template)
    inputs = {f: fields[f] if f in fields and f != out else _content(rng, user.topics) for f in slots}
    if recipe == "label":
        gold = _label(rng, spec, user.favourite)
        fields[out] = gold
    elif recipe == "choice":
        right = rng.randrange(len(spec.labels))
        for k, slot in enumerate(slots[1:]):
            inputs[slot] = _content(rng, user.topics if k == right else other.topics)
        gold = spec.labels[right]
    else:  # the output restates the input's content, opened by the user's signature
        gold = f"{user.signature} {inputs[slots[0]]}"
        fields[out] = gold
    return {"fields": fields, "inputs": inputs, "gold": gold}


def build_task(spec: TaskSpec, seed: int = 0, n_users: int = 6) -> dict[str, Any]:
    """The JSON objects of one task: ``{"train_questions.json": [...], "train_outputs.json": {...}, ...}``."""
    rng = random.Random(f"lamp-synthetic:{VERSION}:{seed}:{spec.name}")
    recipe = recipe_of(spec)
    vocab = list(TOPIC_WORDS)
    rng.shuffle(vocab)
    labels = list(spec.labels)
    rng.shuffle(labels)
    users = [_User(u, rng, [vocab[(4 * u + j) % len(vocab)] for j in range(4)], labels)
             for u in range(n_users)]
    splits: dict[str, tuple[list, list]] = {s: ([], []) for s in ("train", "dev", "test")}
    for user in users:
        other = users[(user.u + 1) % n_users]
        timeline = [_item(rng, spec, recipe, user, other) for _ in range(user.n_items)]
        profile = [{"id": f"1{user.u:03d}{t:03d}", **it["fields"], "date": f"{2010 + t}-{user.u % 12 + 1:02d}-15"}
                   for t, it in enumerate(timeline)]
        first_train = user.n_items - 2 - N_TRAIN
        for t in range(first_train, user.n_items):
            split = "test" if t == user.n_items - 1 else "dev" if t == user.n_items - 2 else "train"
            qid = f"2{user.u:03d}{t:03d}"
            questions, golds = splits[split]
            questions.append({"id": qid, "input": render(spec.input_template, timeline[t]["inputs"]),
                              "profile": profile[:t], "user_id": user.id})
            golds.append({"id": qid, "output": timeline[t]["gold"]})
    files: dict[str, Any] = {}
    for split, (questions, golds) in splits.items():
        files[f"{split}_questions.json"] = questions
        if split != "test":  # official LaMP ships no test outputs: test is predict-only here too
            files[f"{split}_outputs.json"] = {"task": spec.name, "golds": golds}
    return files


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def write_synthetic(root: Path | str, seed: int = 0, n_users: int = 6, tasks: list[str] | None = None) -> Path:
    """Write the pack under ``root`` (``<root>/<task folder>/<split>_{questions,outputs}.json``); returns root.

    ``tasks`` None = every shipped task. The manifest ``synthetic.json`` (seed, version, file sha256s) is
    written last, so its presence means the pack is complete."""
    if n_users < 2:
        raise ValueError(f"write_synthetic: n_users must be >= 2 (choice tasks need another user), got {n_users}")
    root = Path(root)
    hashes: dict[str, str] = {}
    for name in tasks or task_names():
        spec = load_task(name)
        for fname, obj in build_task(spec, seed, n_users).items():
            data = _dump(obj)
            rel = f"{spec.folder}/{fname}"
            _write_if_changed(root / rel, data)
            hashes[rel] = sha256_bytes(data)
    manifest = {"generator": "benchmark.data.synthetic", "version": VERSION, "seed": seed, "n_users": n_users,
                "note": "synthetic data with planted per-user preferences; not for leaderboards",
                "files": hashes}
    _write_if_changed(root / MANIFEST, _dump(manifest))
    return root


def is_complete(root: Path | str, seed: int, n_users: int = 6) -> bool:
    """True when ``root`` holds a finished pack of this generator version, seed and size."""
    path = Path(root) / MANIFEST
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (m.get("version"), m.get("seed"), m.get("n_users")) == (VERSION, seed, n_users) and all(
        (Path(root) / rel).is_file() for rel in m.get("files", {}))
