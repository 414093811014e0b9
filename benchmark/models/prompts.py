"""LaMP's retrieval-augmented prompts: per-task templates and the token-budget algorithm of LaMP's
``prompts/prompts.py``.

LaMP's ``create_prompt_generator`` (LaMP/prompts/prompts.py), restated over the task spec (``spec.rag``) so no
code branches on a task name:

1. ``max_len_prompt = max_length - min(len(input), int(factor * max_length))`` with ``factor = 0.6``: the
   retrieved items always get at least 40 % of the budget.
2. Per item ``per_p = (max_len_prompt - frame - joiner * (k - 1)) // k``.
3. Item by item: the template without its long field (``spec.rag.truncate_field``, rendered with ``" "``) costs
   ``needed`` tokens; the field is cut to ``per_p + saved - needed`` tokens and the unused part of the item's
   budget carries over (``saved += per_p - used - needed``).
4. If an item cannot fit (a negative allowance, where LaMP's tokenizer call raises), ``factor`` drops by 0.1 and
   all is retried; once ``factor < 0`` the plain input is returned (LaMP's float steps: 0.6 ... 2.8e-17).
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
more conservative than ours. With inputs under ``0.6 * max_length`` the whole prompt fits ``max_length``;
longer inputs keep their length (as in LaMP) and are cut by the LM.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from benchmark.data.example import Example
from benchmark.data.tasks import TaskSpec, render

if TYPE_CHECKING:
    from benchmark.retrieval.rankers import Ranker

JOINER = ", and "
FACTOR, FACTOR_STEP = 0.6, 0.1


class BudgetError(ValueError):
    """The retrieved items cannot fit the current budget (LaMP lowers its input factor and retries)."""


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


def build_rag_prompt(spec: TaskSpec, inp: str, items: Sequence[dict[str, Any]], tokenizer_like: Any,
                     max_length: int) -> str:
    """LaMP's prompt for ``inp`` with ``items`` (best first) under a ``max_length`` token budget."""
    if not items:
        return inp
    tok = tokenizer_like if isinstance(tokenizer_like, TokenCounter) else TokenCounter(tokenizer_like)
    n_input = tok.count(inp)
    factor = FACTOR
    while True:
        budget = max_length - min(n_input, int(factor * max_length))
        try:
            return place_items(spec, inp, render_items(spec, items, tok, budget))
        except BudgetError:
            factor -= FACTOR_STEP
            if factor < 0:
                return inp


def rag_prompts(ctx: Any, examples: Sequence[Example], ranker: "Ranker | str", k: int) -> list[str]:
    """One LaMP RAG prompt per example: the ``k`` best profile items by ``ranker`` (a Ranker or a retriever
    name), rendered with the backbone's tokenizer under ``backbone.max_input_tokens``."""
    from benchmark.retrieval.rankers import retrieve_top_k

    if k < 1:
        raise ValueError(f"rag_prompts: k must be >= 1, got {k}")
    tok = TokenCounter(ctx.lm)
    max_length = int(ctx.cfg.backbone.max_input_tokens)
    return [build_rag_prompt(ctx.spec, ex.input, items, tok, max_length)
            for ex, items in zip(examples, retrieve_top_k(ctx, examples, ranker, k))]
