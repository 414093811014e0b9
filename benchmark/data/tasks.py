"""LaMP task specifications as data.

Every LaMP task is one YAML file in ``configs/tasks/`` validated against :class:`TaskSpec`. Code never asks
``if task == "LaMP_3"``: it asks the spec (``spec.kind``, ``spec.labels``, ``spec.query`` ...). Facts come from
the official LaMP code (templates, label order, retrieval queries and documents, RAG item templates) and the
Persona-Plug code (history text per task).

Bump ``version`` on any change that can move a number (lm-eval's rule); the version is written in every run row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

TASKS_DIR = Path(__file__).resolve().parents[2] / "configs" / "tasks"
KINDS = ("classification", "rating", "generation")


@dataclass
class Metric:
    name: str = "???"
    higher_is_better: bool = True


@dataclass
class QueryRule:
    """How to cut the retrieval / user-embedder query out of a LaMP ``input`` string.

    kinds: ``after`` (text after the first ``marker``), ``after_first_colon``, ``between`` (text between
    ``start`` and the next ``end``), ``quoted`` (the quoted strings at ``indices``, joined by a space).
    """

    kind: str = "after"
    marker: str = ""
    start: str = ""
    end: str = ""
    indices: list[int] = field(default_factory=list)


@dataclass
class RagTemplate:
    """LaMP's retrieval-augmented prompt (``prompts/prompts.py``): ``item`` per retrieved profile item, items joined
    by ", and ", then either ``prompt`` with ``{items}``/``{input}`` or, when ``splice_after`` is set, the
    items spliced into the input right after the first occurrence of that word (LaMP-1)."""

    item: str = "???"
    prompt: str = "{items}. {input}"
    splice_after: str = ""
    truncate_field: str = ""  # the item field cut to fit the token budget (LaMP: description/text/abstract; LaMP-1 title)


@dataclass
class TaskSpec:
    name: str = "???"
    title: str = "???"
    version: int = 1
    kind: str = "???"
    input_template: str = "???"
    labels: list[str] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    max_new_tokens: int = 128
    profile_fields: list[str] = field(default_factory=list)
    answer_field: str = ""  # the profile field holding the task's answer (label, rating, output); "" = none (LaMP-1)
    doc_fields: list[str] = field(default_factory=list)
    embed_fields: list[str] = field(default_factory=list)
    query: QueryRule = field(default_factory=QueryRule)
    rag: RagTemplate = field(default_factory=RagTemplate)
    aliases: list[str] = field(default_factory=list)
    directory: str = ""  # folder name under a data root; defaults to ``name``

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "generation" and not self.labels:
            raise ValueError(f"task {self.name}: a {self.kind} task needs its label set")
        if not self.metrics:
            raise ValueError(f"task {self.name}: no metrics declared")

    # ------------------------------------------------------------------ derived facts
    @property
    def folder(self) -> str:
        return self.directory or self.name

    @property
    def headline(self) -> Metric:
        """The metric a leaderboard sorts by (HELM's ``main_name``): the first declared."""
        return self.metrics[0]

    @property
    def has_labels(self) -> bool:
        return bool(self.labels)

    def accepts_task_name(self, name: str) -> bool:
        return name == self.name or name in self.aliases

    # ------------------------------------------------------------------ text rules
    def retrieval_query(self, text: str) -> str:
        """The query LaMP's retrievers use for this input (LaMP's ``prompts/prompts.py``)."""
        return extract_query(self.query, text)

    def document(self, item: dict[str, Any]) -> str:
        """A profile item as a retrieval corpus document (LaMP's ``prompts/prompts.py``)."""
        return " ".join(str(item.get(f, "")) for f in self.doc_fields)

    def history_text(self, item: dict[str, Any]) -> str:
        """A profile item as the text Persona-Plug's history encoder embeds (the official ``aggr_id.py``)."""
        return " ".join(str(item.get(f, "")) for f in self.embed_fields)


def quoted_strings(text: str) -> list[str]:
    """Strings between double quotes, scanning left to right like LaMP's ``extract_strings_between_quotes``."""
    out, inside, cur = [], False, []
    for ch in text:
        if ch == '"':
            if inside:
                out.append("".join(cur))
                cur = []
            inside = not inside
        elif inside:
            cur.append(ch)
    return out


def extract_query(rule: QueryRule, text: str) -> str:
    """Apply a :class:`QueryRule`; falls back to the whole input when the marker is absent."""
    if rule.kind == "after":
        i = text.find(rule.marker)
        return text[i + len(rule.marker):].strip() if i >= 0 else text
    if rule.kind == "after_first_colon":
        i = text.find(":")
        return text[i + 1:].strip() if i >= 0 else text
    if rule.kind == "between":
        i = text.find(rule.start)
        if i < 0:
            return text
        j = text.find(rule.end, i + len(rule.start))
        return text[i + len(rule.start): j if j >= 0 else None]
    if rule.kind == "quoted":
        parts = quoted_strings(text)
        picked = [parts[i] for i in rule.indices if i < len(parts)]
        return " ".join(picked) if picked else text
    raise ValueError(f"unknown query rule kind {rule.kind!r}")


def render(template: str, fields: dict[str, Any]) -> str:
    """``str.format`` that names the missing field instead of raising a bare KeyError."""
    try:
        return template.format(**fields)
    except KeyError as e:
        raise KeyError(f"template {template[:60]!r}... needs field {e.args[0]!r}; item has {sorted(fields)}") from None


def task_names() -> list[str]:
    """Every shipped task, LaMP_1 ... LaMP_7 then LaMP_2N."""
    names = sorted(p.stem for p in TASKS_DIR.glob("LaMP_*.yaml"))
    return sorted(names, key=lambda n: (len(n), n))


@lru_cache(maxsize=None)
def load_task(name: str) -> TaskSpec:
    path = TASKS_DIR / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    return spec_from_config(OmegaConf.load(path).task)


def spec_from_config(node: Any) -> TaskSpec:
    """Validate a task node (dict or DictConfig) against the schema: unknown keys and missing values raise."""
    schema = OmegaConf.structured(TaskSpec)
    merged = OmegaConf.merge(schema, node)
    obj = OmegaConf.to_object(merged)
    assert isinstance(obj, TaskSpec)
    return obj


_WS = re.compile(r"\s+")


def word_count(text: str) -> int:
    return len(_WS.split(text.strip())) if text.strip() else 0
