"""Declared answer post-processing: how a raw LM output becomes the string the official scorer sees.

The official LaMP scorer (``eval/evaluation.py``) only strips whitespace: "comedy." or "The tag is comedy" is
wrong, "4 stars" is an unparsable rating. Small or chatty backbones lose most of their score to that rule,
which measures formatting, not personalisation. The suite therefore declares one of three answer modes per
run (``decoding.answer_mode``, written in every result row and leaderboard header):

* ``generate`` - the generated text as is (the official protocol; the scorer strips it).
* ``extract``  - :func:`extract_answer` below, applied identically to every method's output.
* ``choice``   - the LM ranks the task's labels by likelihood; the output is always a label (done in
  ``benchmark/models/lm.py``; here it is only described).

Extraction rules (:func:`extract_answer`), all driven by the spec, never by the task name:

* classification - the label whose occurrence starts first in the text, case-insensitive, as a whole
  word/phrase: a label end that is a letter or digit may not touch another word character or a hyphen
  ("comedy" is not found in "comedy-drama"; "[1]" is found in "ref[1]"), and a space inside a label matches
  any run of whitespace. When two labels start at the same position the longest wins ("dark comedy" over "comedy").
  Labels of the form "[x]" (LaMP-1's "[1]", "[2]") also match a bare "x" standing alone (not inside a word
  or a number such as "1.5"), but only when no label occurs in its exact form anywhere in the text: the
  prompt itself says "answer with [1] or [2]", so the bracketed form is the stronger signal.
* rating - if the stripped text is already a finite number (``float()`` accepts it: "4", "3.5") it is kept as
  is; otherwise the first label ("1".."5" for LaMP-3) standing alone as a token: not touching a word
  character, ".", "-" or "/" on either side, except that a sentence-final period is allowed ("4." -> "4").
  So "I'd say 4 stars" -> "4", while "1-5", "4/5" and "4.5 stars" yield nothing.
* nothing found - the stripped text unchanged, so the official rule still counts it as unparsable.
* generation - ``text.strip()`` only. Cutting "Title:"-style prefixes or quotes would tune the output to
  ROUGE rather than to the task, so no method gets that help.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Sequence

from benchmark.data.tasks import TaskSpec

ANSWER_MODES = {
    "generate": "official: the generated text, whitespace-stripped, must be an exact label/number",
    "extract": "extracted: first task label (classification) or first standalone rating found in the generated text",
    "choice": "choice: the task label with the highest mean token log-probability under the LM",
}

_WORD_EDGE_BEFORE = r"(?<![\w-])"
_WORD_EDGE_AFTER = r"(?![\w-])"
_BRACKETED = re.compile(r"^\[(.+)\]$")


def describe_answer_mode(mode: str) -> str:
    """One line saying how outputs were turned into answers (for result rows and leaderboard headers)."""
    if mode not in ANSWER_MODES:
        raise ValueError(f"unknown decoding.answer_mode {mode!r}; expected one of {', '.join(ANSWER_MODES)}")
    return ANSWER_MODES[mode]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _phrase(label: str) -> str:
    """A label as a regex: escaped, any whitespace run between its words, and a word edge on each end that
    is a word character ("[1]" may touch anything, "comedy" may not touch a letter, digit or hyphen)."""
    body = r"\s+".join(re.escape(part) for part in label.split())
    before = _WORD_EDGE_BEFORE if re.match(r"\w", label) else ""
    after = _WORD_EDGE_AFTER if re.search(r"\w$", label) else ""
    return f"{before}{body}{after}"


def _alternation(labels: Sequence[str]) -> str:
    # Longest first: at one start position Python's regex takes the first alternative that matches.
    return "|".join(_phrase(l) for l in sorted(labels, key=len, reverse=True))


@lru_cache(maxsize=None)
def _label_patterns(labels: tuple[str, ...]) -> tuple[re.Pattern, re.Pattern | None, dict[str, str]]:
    """(exact-label pattern, bare-alias pattern or None, normalised match -> canonical label)."""
    canonical = {_norm(l): l for l in labels}
    exact = re.compile(_alternation(labels), re.IGNORECASE)
    bare = {}
    for label in labels:
        m = _BRACKETED.match(label.strip())
        if m:
            bare[_norm(m.group(1))] = label
    bare_pattern = None
    if bare:
        # Standalone: no word char, hyphen or bracket before; no word char, hyphen, bracket or decimal after.
        bare_pattern = re.compile(
            rf"(?<![\w\-\[.])(?:{_alternation(list(bare))})(?![\w\-\]]|\.\d)", re.IGNORECASE)
    return exact, bare_pattern, {**{f"bare:{k}": v for k, v in bare.items()}, **canonical}


def _extract_label(labels: Sequence[str], text: str) -> str | None:
    exact, bare, canonical = _label_patterns(tuple(labels))
    m = exact.search(text)
    if m:
        return canonical[_norm(m.group(0))]
    if bare is not None:
        m = bare.search(text)
        if m:
            return canonical[f"bare:{_norm(m.group(0))}"]
    return None


@lru_cache(maxsize=None)
def _rating_pattern(labels: tuple[str, ...]) -> re.Pattern:
    return re.compile(rf"(?<![\w./-])(?:{_alternation(labels)})(?![\w/-]|\.\w)")


def _extract_rating(labels: Sequence[str], text: str) -> str | None:
    try:
        if math.isfinite(float(text)):
            return text
    except ValueError:
        pass
    m = _rating_pattern(tuple(labels)).search(text)
    return m.group(0) if m else None


def extract_answer(spec: TaskSpec, text: str) -> str:
    """The answer contained in ``text`` under the ``extract`` mode rules (module docstring)."""
    stripped = str(text).strip()
    if spec.kind == "classification":
        found = _extract_label(spec.labels, stripped)
    elif spec.kind == "rating":
        found = _extract_rating(spec.labels, stripped)
    else:
        found = None
    return stripped if found is None else found


def apply_answer_mode(spec: TaskSpec, mode: str, texts: Sequence[str]) -> list[str]:
    """Final answers for raw outputs under ``mode``: ``extract`` extracts; ``generate`` and ``choice`` keep
    the text (the scorer strips it; ``choice`` outputs are labels already)."""
    describe_answer_mode(mode)  # validates
    if mode == "extract":
        return [extract_answer(spec, t) for t in texts]
    return list(texts)
