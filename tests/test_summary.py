"""Summary-augmented prompting (baselines/summary.py): history selection, the summariser prompt budget, the
per-user summary cache, the final prompt budget, and the reviewer's summaries.jsonl. Tiny random models."""
from __future__ import annotations

import hashlib

import pytest

from baselines.summary import SEPARATOR, fair_shares, select_history, summariser_prompt
from benchmark.runs.config import compose
from benchmark.contract.context import Context
from benchmark.data.example import Example

LAMP4_INPUT = "Generate a headline for the following article: "


def words(n: int, word: str = "movie") -> str:
    return " ".join([word] * n)


def profile(user: int, n: int, dated: bool = True) -> tuple[dict, ...]:
    return tuple({"id": f"4{user:02d}{t:04d}", "text": f"the user likes {words(t + 3, 'paper')}",
                  "title": f"review score {t}", **({"date": f"2020-01-{t + 1:02d}"} if dated else {})}
                 for t in range(n))


def examples(n_users: int = 3, n_items: int = 12, input_words: int = 12) -> list[Example]:
    return [Example(id=f"q{u}", user_id=f"u{u}", input=LAMP4_INPUT + words(input_words + 9 * u, "article"),
                    profile=profile(u, n_items), gold="a title") for u in range(n_users)]


def context(tmp_path, tiny_overrides, backbone_dir, method: str = "summary_only", *extra: str,
            task: str = "LaMP_4") -> Context:
    cfg = compose(task, method, tiny_overrides(backbone_dir, "method.summary_max_new_tokens=12", *extra),
                  profile="test")
    return Context(cfg)


def make(ctx: Context):
    from benchmark.contract.registry import get_method
    return get_method(str(ctx.cfg.method.name))(ctx)


class Spy:
    """Wraps a summariser's generate: counts calls and keeps the prompts it saw."""

    def __init__(self, generate):
        self.generate, self.calls, self.prompts = generate, 0, []

    def __call__(self, prompts, **kw):
        self.calls += 1
        self.prompts += list(prompts)
        return self.generate(prompts, **kw)


def spy_on(method) -> Spy:
    spy = Spy(method.summarizer.generate)
    method.summarizer.generate = spy  # instance attribute: shadows the bound method for this object only
    return spy


# ------------------------------------------------------------------------------------------ pure helpers
def test_fair_shares_hand_computed():
    assert fair_shares([10, 50, 50], 60) == [10, 25, 25]      # the short item's unused share flows on
    assert fair_shares([30, 30, 30], 10) == [3, 3, 4]
    assert fair_shares([5, 5], 100) == [5, 5]
    assert fair_shares([7, 7], -3) == [0, 0]


def test_recency_takes_latest_k_by_date_else_profile_order():
    items = profile(0, 6)
    shuffled = (items[3], items[0], items[5], items[1], items[4], items[2])
    got = select_history(shuffled, 3, "recency", seed=0, user="u0")
    assert [it["id"] for it in got] == ["4000003", "4000004", "4000005"]  # by date, oldest first
    undated = profile(0, 6, dated=False)
    got = select_history(undated[::-1], 2, "recency", seed=0, user="u0")
    assert [it["id"] for it in got] == ["4000001", "4000000"]             # last two in profile order
    assert len(select_history(items[:2], 10, "recency", 0, "u0")) == 2


def test_random_selection_is_seeded_by_seed_and_user_only():
    items = profile(0, 30)
    a = [it["id"] for it in select_history(items, 4, "random", seed=1, user="u0")]
    import random
    random.seed(12345)  # the global RNG must not matter
    assert [it["id"] for it in select_history(items, 4, "random", seed=1, user="u0")] == a
    assert a == sorted(a) and len(set(a)) == 4                            # chronological, distinct
    assert [it["id"] for it in select_history(items, 4, "random", seed=2, user="u0")] != a
    assert [it["id"] for it in select_history(items, 4, "random", seed=1, user="u1")] != a
    with pytest.raises(ValueError, match="selection"):
        select_history(items, 4, "oldest", 0, "u0")


def test_summariser_prompt_keeps_instruction_and_truncates_items_evenly():
    cfg = compose("LaMP_4", "summary_only", profile="test").method                # LaMP_4's prompts from the YAML
    count = lambda t: len(t.split())                                       # noqa: E731 - whitespace tokenizer
    truncate = lambda t, n: " ".join(t.split()[:max(n, 0)])                # noqa: E731
    items = [{"id": "a", "text": words(20, "x"), "title": "t1 t2"},
             {"id": "b", "text": words(20, "y"), "title": "u1 u2"}]
    instruction = count(cfg.summary_prompt.format(history=""))
    # room for items = 21 - 1 (separator) = 20 -> 10 tokens each: "article:" 6 words "headline:" 2 words
    template = (cfg.summary_prompt, cfg.summary_item)
    prompt, kept = summariser_prompt(*template, items, instruction + 21, count, truncate)
    history = f"article: {words(6, 'x')} headline: t1 t2{SEPARATOR}article: {words(6, 'y')} headline: u1 u2"
    assert prompt == cfg.summary_prompt.format(history=history)
    assert [it["id"] for it in kept] == ["a", "b"]
    prompt, kept = summariser_prompt(*template, items, instruction + 4, count, truncate)  # one item at most
    assert [it["id"] for it in kept] == ["b"] and count(prompt) <= instruction + 4
    with pytest.raises(ValueError, match="instruction alone"):
        summariser_prompt(*template, items, instruction - 1, count, truncate)


# ------------------------------------------------------------------------------------------ the method
def test_second_run_hits_the_cache_and_reports_jsonl(tmp_path, tiny_overrides, tiny_causal_dir):
    exs = examples()
    first = make(context(tmp_path, tiny_overrides, tiny_causal_dir))
    spy1 = spy_on(first)
    out1 = first.predict(exs)
    assert len(out1.outputs) == 3 and spy1.calls == 1 and len(spy1.prompts) == 3   # one batch of 3 users (batch_size 4)
    assert first.cost()["summary_cache_misses"] == 3 and first.cost()["summarize_s_per_user"] > 0

    rows = first.diagnostics()["summaries.jsonl"]
    assert [r["user"] for r in rows] == ["u0", "u1", "u2"]
    assert [r["prompt_sha256"] for r in rows] == [hashlib.sha256(p.encode()).hexdigest() for p in spy1.prompts]
    n = int(first.cfg.history_items)                                       # the profile's cap (test profile: 4)
    assert rows[0]["item_ids"] == [f"400{t:04d}" for t in range(12 - n, 12)]  # the latest n of 12 items
    assert rows[0]["selection"] == "recency" and rows[0]["example_ids"] == ["q0"]

    second = make(context(tmp_path, tiny_overrides, tiny_causal_dir))
    spy2 = spy_on(second)
    assert second.predict(exs) == out1
    assert spy2.calls == 0
    cost = second.cost()
    assert cost["summary_cache_hits"] == 3 and cost["summary_cache_misses"] == 0
    assert cost["summarize_s_per_user"] is None
    assert [r["summary"] for r in second.diagnostics()["summaries.jsonl"]] == [r["summary"] for r in rows]
    assert all(r["cached"] for r in second.diagnostics()["summaries.jsonl"])


def test_summariser_reads_its_own_budget_not_the_backbone_limit(tmp_path, tiny_overrides, tiny_causal_dir):
    ctx = context(tmp_path, tiny_overrides, tiny_causal_dir, "summary_only", "method.summary_max_input_tokens=200")
    method = make(ctx)
    spy = spy_on(method)
    before = ctx.lm.n_truncated
    method.summaries(examples(n_items=30))
    tok = ctx.lm.tokenizer
    lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in spy.prompts]
    assert all(64 < n <= 200 for n in lengths), lengths       # longer than backbone.max_input_tokens=64 ...
    assert ctx.lm.n_truncated == before                        # ... yet never cut by the LanguageModel
    assert ctx.lm.max_input_tokens == 64                       # and the limit is restored


def test_same_seed_same_summaries_and_selection_recorded(tmp_path, tiny_overrides, tiny_causal_dir):
    exs = examples(n_items=25)

    def run(name: str, *extra: str) -> list[dict]:
        ov = [f"run.cache_dir={tmp_path / name / 'cache'}", "method.history_items=4", *extra]
        method = make(context(tmp_path, tiny_overrides, tiny_causal_dir, "summary_only", *ov))
        method.summaries(exs)
        assert method.cost()["summary_cache_misses"] == 3     # separate caches: both runs generate
        return method.diagnostics()["summaries.jsonl"]

    a = run("a", "method.selection=random", "seed=7")
    b = run("b", "method.selection=random", "seed=7")
    c = run("c", "method.selection=random", "seed=8")
    r = run("r", "method.selection=recency", "seed=7")
    assert [x["summary"] for x in a] == [x["summary"] for x in b]
    assert [x["item_ids"] for x in a] == [x["item_ids"] for x in b]
    assert [x["item_ids"] for x in a] != [x["item_ids"] for x in c]
    assert {x["selection"] for x in a} == {"random"} and {x["selection"] for x in r} == {"recency"}
    assert r[0]["item_ids"] == [it["id"] for it in exs[0].profile[-4:]]


def test_other_summariser_by_id(tmp_path, tiny_overrides, tiny_causal_dir, tiny_seq2seq_dir):
    method = make(context(tmp_path, tiny_overrides, tiny_causal_dir, "summary_only",
                          f"method.summarizer={tiny_seq2seq_dir}"))
    method.predict(examples(n_users=2))
    assert method.summarizer.kind == "seq2seq" and method.ctx.lm.kind == "causal"
    assert {r["summarizer"] for r in method.diagnostics()["summaries.jsonl"]} == {str(tiny_seq2seq_dir)}


def test_summary_only_rejects_k(tmp_path, tiny_overrides, tiny_causal_dir):
    with pytest.raises(ValueError, match="summary_only takes k = 0"):
        make(context(tmp_path, tiny_overrides, tiny_causal_dir, "summary_only", "method.k=2"))


# inputs of 18, 27, 36, 45 and 88 tokens (8-token instruction + N x "article"). LaMP's builder keeps an input
# over 0.6 x 64 = 38 tokens whole and gives the item 64 - 38 = 26 tokens, so with k = 1 the 45-token input
# overruns too (cut at 64, as bm25 k=1 is); with k = 0 only the 88-token one does.
@pytest.mark.parametrize("method,n_cut", [("summary", 2), ("summary_only", 1)])
def test_every_final_prompt_fits_the_backbone_budget(tmp_path, tiny_overrides, tiny_backbone_dir, method, n_cut):
    exs = examples(n_users=4, input_words=10)
    long = Example(id="q9", user_id="u9", input=LAMP4_INPUT + words(80, "article"), profile=profile(9, 5))
    exs.append(long)
    ctx = context(tmp_path, tiny_overrides, tiny_backbone_dir, method)
    m = make(ctx)
    prompts = m.build_prompts(exs)
    tok = ctx.lm.tokenizer
    budget = int(ctx.cfg.backbone.max_input_tokens)
    assert budget == 64
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert all(len(i) <= budget for i in ids), [len(i) for i in ids]
    assert prompts[0].endswith(exs[0].input)                   # a short input is never cut
    if next(iter(m.records.values()))["summary"].strip():
        assert prompts[0].startswith("User summary: ")
    assert m.cost()["prompts_cut_to_budget"] == n_cut
    if all(r["summary"].strip() for r in m.records.values()):  # (a random T5 may write empty summaries)
        assert m.cost()["summaries_dropped_for_budget"] >= n_cut
    if method == "summary_only":                               # no summary, the input's first 64 tokens
        first = tok(long.input, add_special_tokens=False)["input_ids"][:budget]
        assert prompts[-1] == tok.decode(first, skip_special_tokens=True)
