"""LaMP's retrieval-augmented prompts: per-task templates and the token-budget algorithm of LaMP's
``prompts/prompts.py``.

LaMP's ``create_prompt_generator`` (LaMP/prompts/prompts.py), restated over the task spec (``spec.rag``) so no
code branches on a task name, with one deliberate change: the task input is never cut.

1. LaMP gives the items ``max_len_prompt = max_length - min(len(input), int(0.6 * max_length))`` tokens, so they
   always get at least 40 % of the budget; an input longer than 60 % of it then overruns ``max_length`` and the
   model's input cut removes the prompt's tail, which is the task itself (before this change: about half of
   the LaMP-5 and LaMP-6 RAG prompts of the mini pack). Here the items get ``max_length - len(input)``: the
   same as LaMP's for every input under 60 % of the budget, and never more than what the whole input leaves.
2. Per item ``per_p = (max_len_prompt - frame - joiner * (k - 1)) // k``.
3. Item by item: the template without its long field (``spec.rag.truncate_field``, rendered with ``" "``) costs
   ``needed`` tokens; the field is cut to ``per_p + saved - needed`` tokens and the unused part of the item's
   budget carries over (``saved += per_p - used - needed``).
4. If an item cannot fit (a negative allowance), LaMP lowers its input reserve and retries, which overruns the
   budget; here the worst-ranked item is cut instead and the rest are fitted again; with no item left the plain
   input is returned. The number of items cut is returned with the prompt (:func:`fit_rag_prompt`) and counted
   per run in the row (``cost.n_rag_items_cut``).
5. Items (best first) are joined with ``", and "`` and placed with ``spec.rag.prompt`` (``{items}`` /
   ``{input}``), or spliced right after the first ``spec.rag.splice_after`` word of the input (LaMP-1).

Where LaMP hard-codes numbers we measure the same thing with the backbone's tokenizer, which reproduces LaMP's
budget for every template except where LaMP under-counts: ``joiner`` = tokens of ``", and "`` (LaMP: 2);
``frame`` = tokens the prompt adds around items and input: ``"{items}. {input}"`` -> ``". "`` (LaMP: the
``- 1``), LaMP-5 -> ``". Following the given patterns "`` (LaMP: 1 + its suffix), LaMP-7 -> ``" are written
by a person. Following the given patterns "`` (LaMP: 1 + "are written by user. Following ...", a phrase its
prompt does not contain), LaMP-1 -> the spliced ``", and "`` (LaMP: 0, so its LaMP-1 prompts can overrun
by 2). LaMP-1's item cost is measured too (LaMP: 2).

Tokens are counted as the backbone sees raw text: ``LanguageModel.count_tokens`` / ``truncate`` (no special
tokens; the LM adds those, and any chat template, around the whole prompt and truncates the raw prompt to the
same ``backbone.max_input_tokens``). LaMP's own counts include T5's ``</s>`` in every piece, 2 tokens per item
more conservative than ours. The whole prompt fits ``max_length`` whenever the input alone does (a joined
prompt that counts more than its pieces is refitted with a smaller item budget); an input over ``max_length``
is returned alone and cut by the LM like any zero-shot prompt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec, render

if TYPE_CHECKING:
    from benchmark.retrieval.rankers import Ranker

JOINER = ", and "


class BudgetError(ValueError):
    """The retrieved items cannot fit the current budget (the worst-ranked one is cut and the rest retried)."""


class TokenCounter:
    """``count(text)`` and ``truncate(text, n)`` from a LanguageModel (or its task view) or a HF tokenizer."""

    def __init__(self, tokenizer_like: Any):
        if hasattr(tokenizer_like, "count_tokens") and hasattr(tokenizer_like, "truncate"):
            self.count, self._truncate = tokenizer_like.count_tokens, tokenizer_like.truncate
        elif callable(tokenizer_like) and hasattr(tokenizer_like, "decode"):
            self.tok = tokenizer_like
            self.count, self._truncate = self._hf_count, self._hf_truncate
        else:
            raise TypeError(f"prompts: need a LanguageModel (count_tokens/truncate) or a HF tokenizer, "
                            f"got {type(tokenizer_like).__name__}")

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def _hf_count(self, text: str) -> int:
        return len(self._ids(text))

    def _hf_truncate(self, text: str, n: int) -> str:
        ids = self._ids(text)
        return text if len(ids) <= n else self.tok.decode(ids[:max(n, 0)], skip_special_tokens=True)

    def truncate(self, text: str, n: int) -> tuple[str, int]:
        """-> (text cut to at most ``n`` tokens, its token count)."""
        out = self._truncate(text, n)
        used = self.count(out)
        while used > n and out:        # a decode/re-encode round trip may merge differently; cut again
            out = self._truncate(out, n - (used - n))
            used = self.count(out)
        return out, used


def truncate_field(spec: TaskSpec) -> str:
    field = spec.rag.truncate_field
    if not field or "{" + field + "}" not in spec.rag.item:
        raise ValueError(f"configs/tasks/{spec.name}.yaml: rag.truncate_field must name a field of rag.item "
                         f"{spec.rag.item!r}, got {field!r}")
    return field


def frame_cost(spec: TaskSpec, tok: TokenCounter) -> int:
    """Tokens the prompt adds around the items and the input (what LaMP's ``- 1`` and suffix stand for)."""
    if spec.rag.splice_after:
        return tok.count(JOINER)
    return tok.count(render(spec.rag.prompt, {"items": "", "input": ""}))


def render_items(spec: TaskSpec, items: Sequence[dict[str, Any]], tok: TokenCounter, budget: int) -> list[str]:
    """Each item rendered with its long field cut so that all of them fit ``budget`` tokens (LaMP's loop)."""
    field, k = truncate_field(spec), len(items)
    per_p = (budget - frame_cost(spec, tok) - tok.count(JOINER) * (k - 1)) // k
    saved, out = 0, []
    for item in items:
        needed = tok.count(render(spec.rag.item, {**item, field: " "}))
        allowance = per_p + saved - needed
        if allowance < 0:
            raise BudgetError(f"{spec.name}: item needs {needed} tokens besides its {field}, {per_p + saved} left")
        text, used = tok.truncate(str(item.get(field, "")), allowance)
        saved += per_p - used - needed
        out.append(render(spec.rag.item, {**item, field: text}))
    return out


def place_items(spec: TaskSpec, inp: str, rendered: Sequence[str]) -> str:
    joined = JOINER.join(rendered)
    word = spec.rag.splice_after
    if word:
        at = inp.find(word)
        return inp if at < 0 else inp[:at + len(word)] + JOINER + joined + inp[at + len(word):]
    return render(spec.rag.prompt, {"items": joined, "input": inp})


def fit_rag_prompt(spec: TaskSpec, inp: str, items: Sequence[dict[str, Any]], tokenizer_like: Any,
                   max_length: int) -> tuple[str, int]:
    """-> (the RAG prompt for ``inp`` with ``items`` (best first) in at most ``max_length`` tokens, the number of
    retrieved items cut). The task input is never cut: the items get what the whole input leaves (LaMP's budget
    whenever the input is under ``0.6 * max_length``); when ``k`` items cannot fit even with their long field
    cut, the worst-ranked item goes and the rest are fitted again; an input at or over ``max_length`` on its own
    is returned alone (the LanguageModel then cuts it, as it cuts a zero-shot prompt)."""
    if not items:
        return inp, 0
    tok = tokenizer_like if isinstance(tokenizer_like, TokenCounter) else TokenCounter(tokenizer_like)
    room = max_length - tok.count(inp)
    kept = list(items)
    while kept:
        budget = room
        while budget > 0:
            try:
                prompt = place_items(spec, inp, render_items(spec, kept, tok, budget))
            except BudgetError:
                break
            over = tok.count(prompt) - max_length   # pieces counted apart can merge differently when joined
            if over <= 0:
                return prompt, len(items) - len(kept)
            budget -= over
        kept.pop()
    return inp, len(items)


def build_rag_prompt(spec: TaskSpec, inp: str, items: Sequence[dict[str, Any]], tokenizer_like: Any,
                     max_length: int) -> str:
    """The prompt of :func:`fit_rag_prompt` without the count of cut items."""
    return fit_rag_prompt(spec, inp, items, tokenizer_like, max_length)[0]


@dataclass
class RagPrompts:
    """One prompt per example and, per example, how many of its ``k`` retrieved items were cut to keep the
    task input whole (a method records ``sum(items_cut)`` in its row)."""
    prompts: list[str]
    items_cut: list[int]


def rag_prompt_set(ctx: Any, examples: Sequence[Example], ranker: "Ranker | str", k: int) -> RagPrompts:
    """One LaMP RAG prompt per example: the ``k`` best profile items by ``ranker`` (a Ranker or a retriever
    name), rendered with the backbone's tokenizer under ``backbone.max_input_tokens``."""
    from benchmark.retrieval.rankers import retrieve_top_k

    if k < 1:
        raise ValueError(f"rag_prompts: k must be >= 1, got {k}")
    tok = TokenCounter(ctx.lm)
    max_length = int(ctx.cfg.backbone.max_input_tokens)
    fitted = [fit_rag_prompt(ctx.spec, ex.input, items, tok, max_length)
              for ex, items in zip(examples, retrieve_top_k(ctx, examples, ranker, k))]
    return RagPrompts([p for p, _ in fitted], [n for _, n in fitted])


def rag_prompts(ctx: Any, examples: Sequence[Example], ranker: "Ranker | str", k: int) -> list[str]:
    """The prompts of :func:`rag_prompt_set` alone."""
    return rag_prompt_set(ctx, examples, ranker, k).prompts
