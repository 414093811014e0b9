"""LaMP's RAG prompt construction (benchmark/models/prompts.py) and the RAG methods (baselines/rag.py).

Renderings and budgets are hand-computed with a one-token-per-word counter; the budget property is also checked
with a real (word-level, punctuation-splitting) HF tokenizer for every task, k and budget.
"""
from __future__ import annotations

import dataclasses

import pytest

from benchmark.data.example import Example
from benchmark.models.prompts import TokenCounter, build_rag_prompt
from benchmark.data.tasks import load_task, task_names


class Words:
    """A tokenizer stand-in: one token per whitespace word (so budgets can be computed by hand)."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, n: int) -> str:
        return " ".join(text.split()[:max(n, 0)])


def words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


# ------------------------------------------------------------------------------------------ rendering
LAMP1_INPUT = ('For an author who has written the paper with the title "Own paper", which reference is related? '
               'Just answer with [1] or [2] without explanation. [1]: "Ref one" [2]: "Ref two"')

RENDERINGS = {  # task -> (items, input, expected prompt), written out by hand from LaMP's prompts.py
    "LaMP_1": ([{"title": "T1 words", "abstract": "a1"}, {"title": "T2", "abstract": "a2"}], LAMP1_INPUT,
               'For an author who has written the paper with the title, and "T1 words", and "T2" "Own paper", '
               'which reference is related? Just answer with [1] or [2] without explanation. [1]: "Ref one" '
               '[2]: "Ref two"'),
    "LaMP_2": ([{"description": "D one", "tag": "comedy"}, {"description": "D two", "tag": "action"}], "IN",
               'the tag for the movie: "D one" is "comedy" , and the tag for the movie: "D two" is "action" . IN'),
    "LaMP_2N": ([{"text": "A text", "title": "t", "category": "sports"}], "IN",
                'the category for the article: "A text" is "sports" . IN'),
    "LaMP_3": ([{"text": "Great", "score": 5}, {"text": "Bad", "score": "1"}], "IN",
               '5 is the score for "Great" , and 1 is the score for "Bad" . IN'),
    "LaMP_4": ([{"text": "Body", "title": "Head"}], "IN", '"Head" is the title for "Body" . IN'),
    "LaMP_5": ([{"title": "Tit", "abstract": "Abs"}], "IN", '"Tit" is a title for "Abs" . Following the given patterns IN'),
    "LaMP_6": ([{"text": "Mail", "title": "Subj"}], "IN", '"Subj" is the title for "Mail" . IN'),
    "LaMP_7": ([{"text": "tw one"}, {"text": "tw two"}], "IN",
               '"tw one" , and "tw two"  are written by a person. Following the given patterns IN'),
}


@pytest.mark.parametrize("task", sorted(RENDERINGS))
def test_each_task_renders_lamps_template(task):
    items, inp, expected = RENDERINGS[task]
    assert build_rag_prompt(load_task(task), inp, items, Words(), 1000) == expected


def test_every_shipped_task_has_a_rendering_test():
    assert set(RENDERINGS) == set(task_names())


def test_no_items_or_no_splice_word_gives_the_plain_input():
    assert build_rag_prompt(load_task("LaMP_4"), "IN", [], Words(), 256) == "IN"
    assert build_rag_prompt(load_task("LaMP_1"), "no such word", [{"title": "T"}], Words(), 256) == "no such word"


def test_missing_truncate_field_names_the_task_file():
    spec = load_task("LaMP_4")
    broken = dataclasses.replace(spec, rag=dataclasses.replace(spec.rag, truncate_field="abstract"))
    with pytest.raises(ValueError, match=r"configs/tasks/LaMP_4.yaml: rag.truncate_field"):
        build_rag_prompt(broken, "IN", [{"text": "x", "title": "y"}], Words(), 256)


# ------------------------------------------------------------------------------------------ budget arithmetic
def test_truncation_and_carry_over_hand_computed():
    # max 40, input 10 words -> budget 40 - min(10, 24) = 30; frame ". " = 1, joiner ", and " = 2, k = 2:
    # per_p = (30 - 1 - 2) // 2 = 13. Template without text: '5 is the score for " " ' = 7 words.
    # item 1: allowance 6, uses 2 -> saved 13 - 2 - 7 = 4; item 2: allowance 13 + 4 - 7 = 10 words.
    inp = "review: " + words("a", 9)
    items = [{"text": "one two", "score": 5}, {"text": words("w", 20), "score": 3}]
    got = build_rag_prompt(load_task("LaMP_3"), inp, items, Words(), 40)
    assert got == f'5 is the score for "one two" , and 3 is the score for "{words("w", 10)}" . {inp}'
    assert len(got.split()) <= 40


def test_factor_is_lowered_until_the_item_fits():
    # max 64, input 50 words, a 30-word title: the template alone costs 36 words.
    # factor 0.6: budget 64 - 38 = 26, per_p 25 -> -11; 0.5: 32 -> -5; 0.4: 64 - 25 = 39, per_p 38 -> 2 words.
    inp, title = words("i", 50), words("T", 30)
    got = build_rag_prompt(load_task("LaMP_4"), inp, [{"title": title, "text": words("x", 40)}], Words(), 64)
    assert got == f'"{title}" is the title for "x0 x1" . {inp}'


def test_plain_input_when_nothing_fits_at_any_factor():
    inp = words("i", 50)        # last try (factor 2.8e-17): budget 64, per_p 63 < 76 words of template
    item = {"title": words("T", 70), "text": "x"}
    assert build_rag_prompt(load_task("LaMP_4"), inp, [item], Words(), 64) == inp


def wordlevel_tokenizer(texts: list[str]):
    """A real HF fast tokenizer: word-level vocabulary, punctuation split off (tokenizers' Whitespace)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def long_item(task: str, n: int) -> dict:
    """Short fixed fields (so the items fit their 40 % share) and a long, punctuated field to cut."""
    spec = load_task(task)
    item = {f: f"{f} v." for f in spec.profile_fields}
    item[spec.rag.truncate_field] = " ".join(f'w{i}, "q{i}".' for i in range(n))
    return item | ({"score": 4} if "score" in spec.profile_fields else {})


@pytest.mark.parametrize("task", task_names())
def test_budget_holds_with_a_real_tokenizer(task):
    spec = load_task(task)
    items = [long_item(task, 40 + 30 * i) for i in range(4)]
    texts = [spec.input_template, spec.rag.item, spec.rag.prompt, ", and", *[str(v) for it in items for v in it.values()]]
    hf = wordlevel_tokenizer(texts)
    tok = TokenCounter(hf)
    short = f"{spec.input_template.split('{')[0]} some words"
    cases = [(48, 1), (48, 2)] + [(m, k) for m in (96, 256) for k in (1, 2, 4)]
    for max_length, k in cases:
        for inp in (short, short + " more" * 200):
            prompt = build_rag_prompt(spec, inp, items[:k], hf, max_length)
            n_inp = tok.count(inp)
            assert prompt != inp, (task, max_length, k)
            if n_inp <= int(0.6 * max_length):
                assert tok.count(prompt) <= max_length, (task, max_length, k)
            else:                          # a long input keeps its length (LaMP); the items stay in budget
                assert tok.count(prompt) - n_inp <= max_length, (task, max_length, k)


def test_lamps_fallback_can_overrun_when_fixed_text_does_not_fit():
    # LaMP's retry lowers the *input's* reserve; with a 10-word input that frees nothing until factor * 64 < 10,
    # so a 55-word title (61 words of template) only fits at the last try (budget 64, per_p 63, 2 words of
    # text) and the prompt is 62 + 10 words (the quotes glue to words when rendered): over max_length, as in
    # LaMP (the LM then cuts the end; it counts such prompts).
    inp, title = words("i", 10), words("T", 55)
    got = build_rag_prompt(load_task("LaMP_4"), inp, [{"title": title, "text": words("x", 9)}], Words(), 64)
    assert got == f'"{title}" is the title for "x0 x1" . {inp}' and len(got.split()) == 72


def test_token_counter_matches_the_language_model_convention():
    hf = wordlevel_tokenizer(["hello world , and"])
    tok = TokenCounter(hf)
    assert tok.count("hello , world") == 3 and tok.truncate("hello world hello", 2) == ("hello world", 2)
    with pytest.raises(TypeError, match="need a LanguageModel"):
        TokenCounter(object())


# ------------------------------------------------------------------------------------------ methods, end to end
def lamp7_examples() -> list[Example]:
    inp = "Paraphrase the following tweet without any explanation before or after it: "
    return [Example(id=f"q{u}", user_id=f"u{u}", input=inp + f"my day {u}", gold="a tweet",
                    profile=tuple({"id": f"{u}{t}", "text": f"tweet {t} about my day {words('z', 3 * t)}"}
                                  for t in range(5))) for u in range(3)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bm25", "dense", "recency", "random"])
def test_rag_methods_predict_within_budget_and_reuse_rankings(method, tmp_path, tiny_overrides, tiny_causal_dir):
    from benchmark.contract.registry import get_method
    from benchmark.runs.config import compose, method_sweep
    from benchmark.contract.context import Context
    from benchmark.retrieval.table import forget_tables

    assert method_sweep(method) == [("k=1", ["method.k=1"]), ("k=4", ["method.k=4"])]
    exs = lamp7_examples()
    stats = []
    for _ in ("first", "second"):
        forget_tables()
        cfg = compose("LaMP_7", method, tiny_overrides(tiny_causal_dir, "method.k=4"), profile="test")
        ctx = Context(cfg)
        m = get_method(method)(ctx)
        pred = m.predict(exs)
        assert len(pred.outputs) == len(exs) == len(pred.raw) and all(isinstance(p, str) for p in pred.outputs)
        assert all(ctx.lm.count_tokens(p) <= 64 and '" , and "' in p for p in pred.prompts)
        stats.append(ctx.store.stats()["rankings"])
    assert stats == [{"hits": 0, "misses": 3}, {"hits": 3, "misses": 0}]
