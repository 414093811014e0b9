"""Profile rankers and their caches (benchmark/retrieval/bm25.py, benchmark/retrieval/rankers.py).

BM25 is checked against rank_bm25 itself (an independent implementation: the contract is LaMP's
``BM25Okapi(...).get_top_n``) and against hand-computed orders; dense, recency and random against hand-made
vectors, dates and seeds; the caches by counting what is recomputed.
"""
from __future__ import annotations

import os
import random as pyrandom
from pathlib import Path

import numpy as np
import pytest
import torch
from rank_bm25 import BM25Okapi

from benchmark.retrieval import bm25, bm25_tokens
from benchmark.retrieval.bm25 import bm25_rank, bm25_rank_many
from benchmark.data.example import Example
from benchmark.retrieval.embeddings import dense_rank_many, embed_texts, text_keys
from benchmark.retrieval.rankers import (BM25Ranker, DenseRanker, Ranker, RecencyRanker, rank_examples, random_rank,
                                         recency_rank)
from benchmark.retrieval.table import ShardedTable, forget_tables
from benchmark.cache.store import Store, content_key
from benchmark.data.tasks import load_task, task_names

MINI = Path(os.environ.get("LAMP_MINI", Path(__file__).resolve().parents[2] / "shared" / "data" / "lamp_mini"))


def reference(query: str, docs: list[str], n: int | None = None) -> list[int]:
    """LaMP's call, verbatim: BM25Okapi over str.split tokens, get_top_n over the profile."""
    bm = BM25Okapi([d.split() for d in docs])
    return bm.get_top_n(query.split(), list(range(len(docs))), n=len(docs) if n is None else n)


# ------------------------------------------------------------------------------------------ BM25
def test_bm25_negative_epsilon_floor_hand_computed():
    # N=3: df(a)=df(c)=2 -> idf = log(1.5) - log(2.5) < 0; idf(b) = -idf(a); average = idf(a)/3 < 0, so the
    # floor eps = 0.25 * average is negative: documents that contain the query term score *below* 0.
    # doc0: tf 1, K = 1.5 * (0.25 + 0.75 * 2/2) = 1.5 -> eps * 1.0; doc1: tf 2, K = 2.0625 -> eps * 5/4.0625.
    docs = ["a b", "a a c", "c"]
    assert bm25_rank("a", docs) == [2, 0, 1]
    assert reference("a", docs) == [2, 0, 1]


def test_bm25_positive_idf_hand_computed():
    # N=4, df(x)=1 -> idf > 0; only doc 2 contains x, the rest tie at 0 (argsort of zeros, reversed).
    docs = ["p q", "q r", "x q", "r s"]
    assert bm25_rank("x", docs)[0] == 2
    assert bm25_rank("x", docs) == reference("x", docs)


def test_bm25_ties_duplicates_and_repeated_query_tokens():
    # Tie order is whatever numpy's (unstable, SIMD) argsort leaves, reversed: it differs between machines, so
    # the contract is "same as rank_bm25 here", plus the score classes computed by hand.
    docs = ["x y", "x y", "z", "w", "v"]                    # idf(x) > 0; identical documents tie exactly
    got = bm25_rank("x", docs)
    assert got == reference("x", docs) and set(got[:2]) == {0, 1}
    docs = ["x y", "x y", "z", "x y"]                       # df(x) = 3 of 4: negative floor, x-documents last
    got = bm25_rank("x", docs)
    assert got == reference("x", docs) and got[0] == 2 and set(got[1:]) == {0, 1, 3}
    assert bm25_rank("x x z", docs) == reference("x x z", docs)      # a repeated token counts twice
    assert bm25_rank("unknown words", docs) == reference("unknown words", docs)


def test_bm25_empty_cases():
    assert bm25_rank("a", []) == []
    assert bm25_rank_many(["a", "b"], [[], ["b c", "d"]]) == [[], reference("b", ["b c", "d"])]
    assert sorted(bm25_rank("a", ["", " "])) == [0, 1]      # rank_bm25 raises here; we return an order
    assert bm25_rank("", ["a", "b c"]) == reference("", ["a", "b c"])
    with pytest.raises(ValueError, match="2 queries but 1 corpora"):
        bm25_rank_many(["a", "b"], [["a"]])


def test_bm25_matches_rank_bm25_on_random_tie_heavy_corpora(monkeypatch):
    rng = pyrandom.Random(7)
    vocab = ["a", "b", "c", "d", "e", "f", "A", "é", "x.y", "the"]
    queries, corpora = [], []
    for _ in range(300):
        n = rng.randint(1, 25)
        corpora.append([" ".join(rng.choices(vocab, k=rng.randint(0, 9))) for _ in range(n)])
        queries.append(" ".join(rng.choices(vocab + ["zz"], k=rng.randint(0, 6))))
    corpora = [c if any(d.split() for d in c) else c + ["a"] for c in corpora]   # rank_bm25 needs a token
    got = bm25_rank_many(queries, corpora)
    assert got == [reference(q, c) for q, c in zip(queries, corpora)]
    assert got[:40] == [bm25_rank(q, c) for q, c in zip(queries[:40], corpora[:40])]   # batch == single
    monkeypatch.setattr(bm25, "PARSE_CHARS", 2000)            # many parts and batches, many idf-sum blocks,
    monkeypatch.setattr(bm25, "BATCH_ROWS", 60)
    monkeypatch.setattr(bm25, "SUM_CELLS", 8)
    monkeypatch.setattr(bm25, "HASH_BITS", 2)                 # and sort-hash ties between different terms
    assert bm25_rank_many(queries, corpora) == got


def test_seq_sums_adds_left_to_right(monkeypatch):
    # the score and average-idf sums must round as rank_bm25's one-by-one additions do, not as numpy's pairwise
    # sum; np.add.reduce along axis 0 of a block with >= 2 columns does that (one column would go pairwise)
    rng = np.random.default_rng(1)

    def loop_sums(values, counts):
        out, i = [], 0
        for c in counts:
            total = 0
            for v in values[i:i + c]:
                total += v
            out.append(total)
            i += c
        return np.array(out, dtype=float)

    shapes = [rng.integers(0, 30, 500), rng.integers(0, 3000, 2), np.array([2500]), np.array([0, 0]), np.zeros(0, int)]
    for cells in (bm25.SUM_CELLS, 64):
        monkeypatch.setattr(bm25, "SUM_CELLS", cells)
        for counts in shapes:
            values = rng.standard_normal(int(counts.sum())) * 10.0 ** rng.integers(-8, 8, int(counts.sum()))
            assert np.array_equal(bm25.seq_sums(values, counts), loop_sums(values, counts))


def test_2d_argsort_rows_are_1d_argsorts():
    # rankings of questions with one corpus size come from one argsort(axis=1): the same permutation, ties
    # included, as np.argsort of each score row on its own (what rank_bm25's get_top_n calls)
    rng = np.random.default_rng(2)
    for n in [*range(1, 40), 64, 100, 257, 1000]:
        scores = rng.integers(0, 3, (16, n)).astype(float) * rng.choice([0.5, 1.0], (16, 1))
        assert [list(r) for r in np.argsort(scores, axis=1)] == [list(np.argsort(row)) for row in scores]


PIECES = ["a", "ab", "abcdefg", "abcdefgh", "abcdefghi", "x" * 16, "x" * 17, "y" * 40, "é", "ÿÿ", "日本語", "😀",
          "\x00", "a\x00", "\x7f", "\ud800", "ab\udfff", " ", "\t", "\n", "\x1c", "\x1f", "\x85", "\xa0", "\u2009",
          "\u3000", "word"]                                  # 7/8/9/16/17-byte tokens, NUL, surrogates, odd spaces


def test_split_keys_is_str_split_with_exact_keys():
    everything = "x".join(map(chr, range(0x110000)))        # what str.split() splits on: bm25_tokens.SPACES, exactly
    kept = set(map(ord, "".join(everything.split())))
    assert sorted(set(range(0x110000)) - kept) == bm25_tokens.SPACES
    rng = pyrandom.Random(3)
    texts = ["".join(rng.choices(PIECES, k=rng.randint(0, 12))) for _ in range(600)] + ["", " ", "\u3000", "ab"]
    for batch in (texts, [t for t in texts if t.isascii()], [t for t in texts if not t.isascii()]):
        key, first, n = bm25_tokens.split_keys(batch)
        assert n.tolist() == [len(t.split()) for t in batch]
        keys_of: dict[str, set[int]] = {}
        for t, f in zip(batch, first.tolist()):
            for j, token in enumerate(t.split()):
                keys_of.setdefault(token, set()).add(int(key[f + j]))
        assert all(len(k) == 1 for k in keys_of.values())    # one key per token, a different one per token
        assert len(set().union(*keys_of.values())) == len(keys_of)


def test_bm25_unicode_long_tokens_and_forced_hash_collisions(monkeypatch):
    rng = pyrandom.Random(11)
    queries = [" ".join(rng.choices(PIECES, k=rng.randint(1, 6))) for _ in range(120)]
    corpora = [[" ".join(rng.choices(PIECES, k=rng.randint(1, 8))) for _ in range(rng.randint(1, 12))]
               for _ in queries]
    corpora = [c if any(d.split() for d in c) else c + ["word"] for c in corpora]   # rank_bm25 needs a token
    want = [reference(q, c) for q, c in zip(queries, corpora)]
    assert bm25_rank_many(queries, corpora) == want
    monkeypatch.setattr(bm25, "BATCH_ROWS", 30)              # (no document repeats here: parts of ~180 chars)
    assert bm25_rank_many(queries, corpora) == want
    monkeypatch.setattr(bm25, "GOLD", np.uint64(0))          # every hash collides: long-token keys fall back to
    monkeypatch.setattr(bm25_tokens, "GOLD", np.uint64(0))   # (the tokeniser's and the scorer's sort hash)
    assert bm25_rank_many(queries, corpora) == want          # exact ids, the sort to (key, row) order


@pytest.mark.skipif(not MINI.exists(), reason="LaMP-mini pack not present")
@pytest.mark.parametrize("task", [t for t in task_names() if (MINI / t).exists()])
def test_bm25_top4_matches_rank_bm25_on_mini_pack(task):
    from benchmark.data.reader import read_split
    spec = load_task(task)
    examples = read_split(MINI, spec, "dev").examples[:50]
    queries = [spec.retrieval_query(ex.input) for ex in examples]
    corpora = [[spec.document(it) for it in ex.profile] for ex in examples]
    got = bm25_rank_many(queries, corpora)
    assert [g[:4] for g in got] == [reference(q, c, n=4) for q, c in zip(queries, corpora)]


# ------------------------------------------------------------------------------------------ dense + caches
class FakeEmbedder:
    """Hand-made 2-d vectors by first word; counts what it is asked to encode."""
    VECTORS = {"north": [0.0, 1.0], "east": [1.0, 0.0], "northeast": [0.6, 0.8], "q:north": [0.0, 1.0]}

    def __init__(self, ident: str = "fake-1", query_instruction: str = ""):
        self.ident = {"id": ident, "pooling": "none", "normalize": True}
        self.query_instruction, self.dim, self.encoded = query_instruction, 2, []

    def encode(self, texts):
        self.encoded += list(texts)
        return torch.tensor([self.VECTORS[t.split()[0]] for t in texts])


def test_dense_ranks_by_dot_product_ties_keep_profile_order(tmp_path):
    emb = FakeEmbedder()
    docs = ["east a", "northeast", "north b", "north c"]
    assert dense_rank_many(emb, Store(tmp_path), ["north query"], [docs]) == [[2, 3, 1, 0]]


def test_embeddings_are_encoded_once_and_reused_across_processes(tmp_path):
    emb, store = FakeEmbedder(), Store(tmp_path)
    v = embed_texts(emb, store, ["north", "east", "north"])
    assert v.tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]] and emb.encoded == ["north", "east"]
    assert store.stats()["embeddings"] == {"hits": 0, "misses": 2}
    forget_tables()                                          # as a new process: read the shards back
    store2 = Store(tmp_path)
    assert embed_texts(emb, store2, ["east", "north"]).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert emb.encoded == ["north", "east"] and store2.stats()["embeddings"] == {"hits": 2, "misses": 0}
    embed_texts(emb, store2, ["northeast"])                  # a new text: one more shard, not a file per text
    assert len(list((tmp_path / "embeddings").rglob("*.pt"))) == 2
    forget_tables()                                          # a lookup loads only the shards it needs
    embed_texts(emb, Store(tmp_path), ["northeast"])
    table = ShardedTable(Store(tmp_path), "embeddings", {"embedder": emb.ident})
    assert len(table.state.indexed) == 2 and len(table.state.loaded) == 1 and len(table.state.rows) == 1
    other = FakeEmbedder(ident="fake-2")                     # another embedder identity never shares rows
    embed_texts(other, store2, ["north"])
    assert other.encoded == ["north"]


def test_query_instruction_is_part_of_the_encoded_text_and_key(tmp_path):
    emb = FakeEmbedder(query_instruction="q:")
    embed_texts(emb, Store(tmp_path), ["north"], query=True)
    assert emb.encoded == ["q:north"]
    assert text_keys(emb.ident, ["q:north", "x"]) == [content_key(emb.ident, "q:north"), content_key(emb.ident, "x")]


class CountingRanker(Ranker):
    name = "counting"

    def __init__(self, tag: str = "a"):
        super().__init__(tag=tag)
        self.calls = 0

    def compute(self, queries, corpora, examples):
        self.calls += len(queries)
        return [list(range(len(c)))[::-1] for c in corpora]


def examples_for(n: int = 3) -> list[Example]:
    return [Example(id=f"q{i}", user_id=f"u{i}", input=f"Paraphrase the following tweet: hello {i}",
                    profile=tuple({"text": f"tweet {i} {j}"} for j in range(i + 2))) for i in range(n)]


def test_rankings_are_cached_by_content_and_counted(tmp_path):
    spec, exs = load_task("LaMP_7"), examples_for()
    store, ranker = Store(tmp_path), CountingRanker()
    first = rank_examples(store, spec, ranker, exs)
    assert first == [[1, 0], [2, 1, 0], [3, 2, 1, 0]] and ranker.calls == 3
    forget_tables()
    store2 = Store(tmp_path)
    assert rank_examples(store2, spec, ranker, exs) == first and ranker.calls == 3
    assert store2.stats()["rankings"] == {"hits": 3, "misses": 0}
    changed = [exs[0], Example(id="q1", user_id="u1", input=exs[1].input, profile=exs[1].profile[:1])]
    rank_examples(store2, spec, ranker, changed)             # other candidate texts -> a miss
    rank_examples(store2, spec, CountingRanker(tag="b"), exs[:1])   # other ranker config -> a miss
    assert store2.stats()["rankings"] == {"hits": 4, "misses": 2}


def test_bad_ranker_output_names_the_question(tmp_path):
    class Broken(CountingRanker):
        def compute(self, queries, corpora, examples):
            return [[0] for _ in corpora]
    with pytest.raises(RuntimeError, match="question q0 got .* not a permutation of its 2"):
        rank_examples(Store(tmp_path), load_task("LaMP_7"), Broken(), examples_for(2))


# ------------------------------------------------------------------------------------------ recency, random
def test_recency_by_date_then_later_profile_item_first():
    items = [{"date": "2015"}, {"date": "2017-01-02"}, {"date": "2016-12-31"}, {"date": "2017-01-02"}, {"date": "2014"}]
    assert recency_rank(items) == [3, 1, 2, 0, 4]


def test_recency_without_usable_dates_is_reverse_profile_order():
    assert recency_rank([{"text": "a"}, {"text": "b"}, {"text": "c"}]) == [2, 1, 0]           # LaMP-7: no key
    assert recency_rank([{"date": ""}, {"date": ""}]) == [1, 0]                               # LaMP-6: empty
    assert recency_rank([{"date": "2019"}, {"date": "May 2018"}, {"date": "2020"}]) == [2, 1, 0]
    assert recency_rank([]) == []


def test_random_is_seeded_per_question_and_isolated():
    a = random_rank(20, seed=0, question_id="q1")
    np.random.seed(123), pyrandom.seed(123), torch.manual_seed(123)          # global RNG state is irrelevant
    assert random_rank(20, seed=0, question_id="q1") == a and sorted(a) == list(range(20))
    assert random_rank(20, seed=1, question_id="q1") != a
    assert random_rank(20, seed=0, question_id="q2") != a


def test_recency_and_random_keys_include_dates_and_question_ids(tmp_path):
    spec, store = load_task("LaMP_7"), Store(tmp_path)
    ex = Example(id="q1", user_id="u", input="x: y", profile=({"text": "a", "date": "2019"}, {"text": "b", "date": "2018"}))
    moved = Example(id="q1", user_id="u", input="x: y", profile=({"text": "a", "date": "2017"}, {"text": "b", "date": "2018"}))
    assert rank_examples(store, spec, RecencyRanker(), [ex, moved]) == [[0, 1], [1, 0]]


# ------------------------------------------------------------------------------------------ real tiny embedder
@pytest.mark.slow
def test_dense_ranker_with_the_loading_layer(tmp_path, tiny_embedder_dir):
    from benchmark.models.loading import load_embedder
    emb = load_embedder({"id": str(tiny_embedder_dir), "pooling": "mean", "normalize": True, "max_tokens": 64,
                         "batch_size": 4})
    spec, exs = load_task("LaMP_7"), examples_for()
    ranker = DenseRanker(emb, Store(tmp_path))
    assert ranker.ident["embedder"] == emb.ident and ranker.ident["similarity"] == "dot"
    got = rank_examples(ranker.store, spec, ranker, exs)
    assert [sorted(r) for r in got] == [list(range(len(ex.profile))) for ex in exs]
    vecs = embed_texts(emb, ranker.store, ["tweet 0 0", "tweet 0 1"])
    q = embed_texts(emb, ranker.store, [spec.retrieval_query(exs[0].input)], query=True)[0]
    assert got[0] == sorted(range(2), key=lambda i: -float(vecs[i] @ q))
    assert ranker.store.stats()["embeddings"]["hits"] >= 3


def test_bm25_ranker_ident_says_its_semantics():
    assert BM25Ranker().ident == {"retriever": "bm25", "version": 1, "k1": 1.5, "b": 0.75, "epsilon": 0.25,
                                  "tokens": "str.split"}
