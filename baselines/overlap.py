"""``profile_overlap``: the LaMP-1 reference baseline that picks the candidate closer to the author's papers.

LaMP-1 asks which of two references ``[1]: "..." [2]: "..."`` an author's new paper cites. Authors cite work
on their own topics, so the candidate whose words the author has used before is a strong LLM-free guess (issue
9 quotes 69% accuracy on LaMP-mini LaMP_1 dev). Rules, fixed so the number is reproducible:

* words: lower-case ``[a-z0-9]+`` tokens (the rouge_score tokenizer's alphabet) minus ``STOPWORDS``, a small
  fixed English function-word list (plus ``using``/``via``/``based``/``toward(s)``, frequent in titles);
* profile words: the set of words of every profile document (``spec.document``: LaMP-1's title + abstract);
* overlap of a candidate: the number of its *distinct* words found in the profile words;
* prediction: the label of the larger overlap; ties (including 0 = 0): the first label, ``[1]``;
* a profile with no words falls back to the global majority label (``cost()["n_fallback_global"]``);
  ``cost()["n_ties"]`` counts the ties.

Only tasks whose input offers exactly two bracketed candidates qualify (``unsupported_reason``); on any other
task the method refuses to start with an error naming the task.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from benchmark.contract.config import MethodConfig
from baselines.heuristics import ReferenceMethod
from benchmark.contract.registry import register_method
from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec

STOPWORDS = frozenset("""
a an the and or but nor of to in on at by for from with without into onto over under about as than then
is are was were be been being it its this that these those there their they we our us you your he she his her
i me my not no so such can could may might will would should do does did has have had which who whom what
when where why how all any each both more most other some only own same very via using based towards toward
""".split())
_TOKEN = re.compile(r"[a-z0-9]+")
_BRACKETED = re.compile(r"\[\d+\]")


def content_words(text: str) -> set[str]:
    """Distinct lower-case ``[a-z0-9]+`` tokens of ``text`` that are not stopwords."""
    return {t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS}


def bracketed_candidates(spec: TaskSpec, ex: Example) -> list[str]:
    """The candidate texts after each ``<label>:`` marker (``[1]: "..." [2]: "..."``), quotes stripped.

    Scanned from the end, so the instruction's own mention of ``[1] or [2]`` (no colon) is never taken."""
    out, end = [], len(ex.input)
    for label in reversed(spec.labels):
        start = ex.input.rfind(f"{label}:", 0, end)
        if start < 0:
            raise ValueError(f"task {spec.name}, question {ex.id}: no '{label}:' candidate in the input")
        text = ex.input[start + len(label) + 1:end].strip()
        out.append(text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text)
        end = start
    return out[::-1]


@register_method("profile_overlap")
class ProfileOverlap(ReferenceMethod):
    Config: ClassVar[type] = MethodConfig

    @classmethod
    def unsupported_reason(cls, spec: TaskSpec) -> str | None:
        ok = (spec.kind == "classification" and len(spec.labels) == 2
              and all(_BRACKETED.fullmatch(lab) and f"{lab}:" in spec.input_template for lab in spec.labels))
        if ok:
            return None
        return (f"it needs exactly two bracketed candidates in the input ('[1]: ... [2]: ...', LaMP-1); "
                f"the task is {spec.kind} with labels {spec.labels[:4]}")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.n_ties = 0

    def global_rating_stat(self) -> str:
        return "mode"  # never used: the task is a two-way classification

    def answer(self, ex: Example) -> str | None:
        profile_words: set[str] = set()
        for item in ex.profile:
            profile_words |= content_words(self.spec.document(item))
        if not profile_words:
            return None
        overlaps = [len(content_words(c) & profile_words) for c in bracketed_candidates(self.spec, ex)]
        self.n_ties += overlaps[0] == overlaps[1]
        return self.spec.labels[max(range(len(overlaps)), key=lambda i: overlaps[i])]

    def rules(self) -> dict[str, Any]:
        return {"user_rule": "candidate with more distinct non-stopword [a-z0-9]+ words in the profile's "
                             f"{'+'.join(self.spec.doc_fields)} (ties: {self.spec.labels[0]})",
                "fallback": "global answer when the profile has no words", **super().rules()}

    def counts(self) -> dict[str, int]:
        return {"n_ties": self.n_ties}
