"""BM25 exactly as LaMP ranks profiles: ``rank_bm25.BM25Okapi`` semantics, batched over many small corpora.

LaMP (reference 2.6) builds one ``BM25Okapi([doc.split() for doc in profile])`` per question and calls
``get_top_n(query.split(), profile, n=k)``. The semantics we reproduce, bit for bit:

* tokens: ``str.split()`` (whitespace, case kept, no stemming); a repeated query token counts every time;
* ``idf(t) = log(N - df + 0.5) - log(df + 0.5)`` with ``math.log``; a *negative* idf (df > N/2) is replaced by
  ``epsilon * average_idf``, the average taken over every term of the corpus *before* flooring and summed in
  rank_bm25's dict order (first appearance: document by document, token by token);
* ``score(d) += idf * (tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)))`` per query token, in query order;
* ranking ``np.argsort(scores)[::-1]`` (so ties come out as numpy's argsort leaves them, reversed).

Every floating-point operation is the same IEEE operation in the same order as rank_bm25 (sums are sequential
``cumsum``s, not pairwise reductions; logs come from ``math.log``), so the scores are identical and so is
every ranking, ties included; ``tests/test_retrieval.py`` and ``scripts/bench_retrieval.py`` check this.

Why not bm25s: its variants cannot express BM25Okapi. ``method="robertson"`` clips idf at 0 (or allows
negatives) instead of the epsilon * average-idf floor, ``"atire"`` uses ``log(N / df)``, scores are float32, and
its index is built for one large corpus, not thousands of 5-300 document profiles. So this is a vectorised
numpy scorer. Work is shared across questions: each distinct document text is tokenised once (one user's
train/dev/test profiles overlap), and questions are scored in chunks with dense (question, term) cells
(``bincount``, ``minimum.at``; no sorting of the corpus entries) and one accumulation step per query token
position for the whole chunk. What remains per question in Python is its ``argsort`` and chunk bookkeeping.
The floor is tokenisation itself (``str.split`` plus a vocabulary lookup per token), which rank_bm25 pays too:
on corpora with no overlap between questions (LaMP-7's tweets) that is most of our time.

Deviation: rank_bm25 raises ZeroDivisionError when a corpus has no tokens at all; we return the argsort of
all-zero scores there, and ``[]`` for an empty corpus.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np

CHUNK_CELLS = 1 << 20          # dense cells per chunk (question x term, question x query term x doc)
BATCH_CHARS = 50_000_000       # distinct document characters parsed at once (bounds the token lists in memory)
_LOG_HALF = np.zeros(0)


def log_half(n: int) -> np.ndarray:
    """``math.log(i + 0.5)`` for i = 0..n (math.log, as rank_bm25 uses; np.log may differ in the last bit)."""
    global _LOG_HALF
    if len(_LOG_HALF) <= n:
        _LOG_HALF = np.array([math.log(i + 0.5) for i in range(max(n + 1, 2 * len(_LOG_HALF), 512))])
    return _LOG_HALF


def ragged_positions(counts: np.ndarray) -> np.ndarray:
    """Segment lengths ``[c0, c1, ...]`` -> each element's position inside its segment."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


class Ragged:
    """Variable-length rows stored flat: row i is ``values[off[i]:off[i] + n[i]]``."""

    def __init__(self, values: np.ndarray, n: np.ndarray):
        self.values, self.n = values, np.asarray(n, dtype=np.int64)
        self.off = np.cumsum(self.n) - self.n

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (the rows' values concatenated, their lengths)."""
        n = self.n[rows]
        return self.values[np.repeat(self.off[rows], n) + ragged_positions(n)], n


class ParsedDocs:
    """Distinct document texts as term statistics: per document its terms in first-occurrence order (rank_bm25's
    dict order) with their counts, as one flat array (``start``/``n_terms`` index it) over a shared vocabulary."""

    def __init__(self, texts: Sequence[str]):
        tokens = [t.split() for t in texts]
        self.length = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))       # [D] tokens
        vocab: dict[str, int] = defaultdict(itertools.count().__next__)
        ids = np.fromiter(map(vocab.__getitem__, itertools.chain.from_iterable(tokens)), dtype=np.int64,
                          count=int(self.length.sum()))                                         # [T]
        self.vocab, self.V = dict(vocab), max(len(vocab), 1)
        key = np.repeat(np.arange(len(texts), dtype=np.int64), self.length) * self.V + ids    # [T] (doc, term)
        cells, first, tf = np.unique(key, return_index=True, return_counts=True)
        order = np.argsort(first)                                       # (doc, first occurrence) order
        self.term = (cells % self.V)[order]                             # [U]
        self.tf = tf[order].astype(np.float64)                          # [U]
        self.n_terms = np.bincount(cells // self.V, minlength=len(texts))   # [D] distinct terms per doc
        self.start = np.cumsum(self.n_terms) - self.n_terms             # [D]


class ParsedQueries:
    """Per query: its distinct known terms in first-occurrence order (``dist``), and for every known token, in
    order, the slot of its term in that list (``occ``). Unknown tokens add exactly 0 in rank_bm25: dropped."""

    def __init__(self, queries: Sequence[str], vocab: dict[str, int], V: int):
        tokens = [q.split() for q in queries]
        n_tok = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        ids = np.fromiter(map(vocab.get, itertools.chain.from_iterable(tokens), itertools.repeat(-1)),
                          dtype=np.int64, count=int(n_tok.sum()))                             # [T]
        q_of = np.repeat(np.arange(len(queries)), n_tok)
        keep = ids >= 0
        ids, q_of = ids[keep], q_of[keep]
        groups, first, inv = np.unique(q_of * V + ids, return_index=True, return_inverse=True)
        order = np.argsort(first)                                       # (query, first occurrence) order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        n_dist = np.bincount(groups[order] // V, minlength=len(queries))
        self.dist = Ragged((groups % V)[order], n_dist)
        self.occ = Ragged(ragged_positions(n_dist)[rank[inv.ravel()]], np.bincount(q_of, minlength=len(queries)))


def bm25_rank(query: str, docs: Sequence[str], *, k1: float = 1.5, b: float = 0.75,
              epsilon: float = 0.25) -> list[int]:
    """Indices of ``docs``, best first, exactly as ``BM25Okapi([d.split() for d in docs]).get_top_n``."""
    return bm25_rank_many([query], [docs], k1=k1, b=b, epsilon=epsilon)[0]


def bm25_rank_many(queries: Sequence[str], corpora: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75,
                   epsilon: float = 0.25) -> list[list[int]]:
    """One full ranking per (query, corpus) pair; each corpus is scored on its own (per-user BM25)."""
    if len(queries) != len(corpora):
        raise ValueError(f"bm25_rank_many: {len(queries)} queries but {len(corpora)} corpora")
    out: list[list[int]] = []
    start, chars, seen = 0, 0, set()
    for i, docs in enumerate(corpora):         # bounded memory: a batch parses <= BATCH_CHARS of distinct text
        new = [d for d in docs if d not in seen]
        seen.update(new)
        chars += sum(map(len, new))
        if chars > BATCH_CHARS or i == len(corpora) - 1:
            out += _rank_batch(queries[start:i + 1], corpora[start:i + 1], k1, b, epsilon)
            start, chars, seen = i + 1, 0, set()
    return out


def _rank_batch(queries: Sequence[str], corpora: Sequence[Sequence[str]], k1: float, b: float,
                epsilon: float) -> list[list[int]]:
    flat = list(itertools.chain.from_iterable(corpora))
    uid = {d: i for i, d in enumerate(dict.fromkeys(flat))}
    corp = Ragged(np.fromiter(map(uid.__getitem__, flat), dtype=np.int64, count=len(flat)),
                  np.fromiter(map(len, corpora), dtype=np.int64, count=len(corpora)))
    docs = ParsedDocs(list(uid))
    qs = ParsedQueries(queries, docs.vocab, docs.V)
    out: list[list[int]] = [[] for _ in queries]
    for chunk in _chunks(corp, qs, docs):
        _rank_chunk(chunk, corp, qs, docs, out, k1, b, epsilon)
    return out


def _chunks(corp: Ragged, qs: ParsedQueries, P: ParsedDocs) -> Iterator[np.ndarray]:
    """Questions in chunks whose dense arrays stay under CHUNK_CELLS. Questions that share documents (one user's
    train/dev/test questions) go together, so a chunk's vocabulary grows with its users, not its questions."""
    todo = np.flatnonzero(corp.n)
    todo = todo[np.lexsort((corp.n[todo], corp.values[corp.off[todo]]))]     # by first document, then size
    docs, off, n_terms = corp.values.tolist(), corp.off.tolist(), P.n_terms.tolist()
    chunk: list[int] = []
    seen: set[int] = set()
    n_max = r_max = terms = 0
    for i in todo.tolist():
        n, r = int(corp.n[i]), int(qs.dist.n[i]) + 1
        new = set(docs[off[i]:off[i] + n]) - seen
        t = sum(map(n_terms.__getitem__, new))
        size = len(chunk) + 1
        if chunk and (size * max(n_max, n) * max(r_max, r) > CHUNK_CELLS
                      or size * min(P.V, terms + t) > CHUNK_CELLS):
            yield np.array(chunk)
            chunk, seen, n_max, r_max, terms = [], set(), 0, 0, 0
            new = set(docs[off[i]:off[i] + n])
            t = sum(map(n_terms.__getitem__, new))
        chunk.append(i)
        seen |= new
        n_max, r_max, terms = max(n_max, n), max(r_max, r), terms + t
    if chunk:
        yield np.array(chunk)


def _rank_chunk(qids: np.ndarray, corp: Ragged, qs: ParsedQueries, P: ParsedDocs, out: list[list[int]],
                k1: float, b: float, epsilon: float) -> None:
    B = len(qids)
    docs, Ns = corp.gather(qids)                                               # [D] parsed-doc ids, [B]
    n_max = int(Ns.max())
    doc_q, doc_pos = np.repeat(np.arange(B), Ns), ragged_positions(Ns)         # [D], [D]
    nt = P.n_terms[docs]                                                       # [D]
    ent = np.repeat(P.start[docs], nt) + ragged_positions(nt)                  # [E] (question, doc, term)
    ent_q, ent_doc, term = np.repeat(doc_q, nt), np.repeat(doc_pos, nt), P.term[ent]
    E = len(ent)

    # chunk-local term ids -> one dense cell per (question, term)
    present = np.zeros(P.V, dtype=bool)
    present[term] = True
    local = np.cumsum(present) - 1                                             # [V]
    Vc = max(int(present.sum()), 1)
    cell = ent_q * Vc + local[term]                                            # [E]
    df = np.bincount(cell, minlength=B * Vc)                                   # [B*Vc]
    first = np.full(B * Vc, E, dtype=np.int64)
    np.minimum.at(first, cell, np.arange(E))
    new = first[cell] == np.arange(E)                                          # [E] term's first doc in question

    # idf over every term, summed sequentially in rank_bm25's dict order (document, then first occurrence)
    logs = log_half(n_max)
    gq, gdf = ent_q[new], df[cell[new]]                                        # [G]
    idf_g = logs[Ns[gq] - gdf] - logs[gdf]
    Vq = np.bincount(gq, minlength=B)                                          # [B] distinct terms per question
    M = np.zeros((B, max(int(Vq.max()), 1)))
    M[gq, ragged_positions(Vq)] = idf_g
    idf_sum = np.cumsum(M, axis=1)[np.arange(B), np.maximum(Vq - 1, 0)]        # [B]
    eps = epsilon * np.where(Vq > 0, idf_sum / np.maximum(Vq, 1), 0.0)         # [B]

    # distinct query terms present in the corpus -> slots 0..; everything else -> the all-zero last slot
    q_ids, n_dist = qs.dist.gather(qids)                                       # [Q], [B]
    R = int(n_dist.max()) + 1
    q_of = np.repeat(np.arange(B), n_dist)                                     # [Q]
    q_cell = q_of * Vc + local[q_ids]
    valid = present[q_ids]
    valid[valid] = df[q_cell[valid]] > 0
    slot = np.full(len(q_ids), R - 1, dtype=np.int64)                          # [Q]
    slot[valid] = ragged_positions(np.bincount(q_of[valid], minlength=B))
    slot_of_cell = np.full(B * Vc, -1, dtype=np.int32)
    slot_of_cell[q_cell[valid]] = slot[valid]
    d = df[q_cell[valid]]
    v = logs[Ns[q_of[valid]] - d] - logs[d]
    idf_slot = np.zeros((B, R))                                                # [B, R]
    idf_slot[q_of[valid], slot[valid]] = np.where(v < 0, eps[q_of[valid]], v)
    L = np.zeros((B, n_max))                                                   # [B, N] doc lengths
    L[doc_q, doc_pos] = P.length[docs]
    avgdl = L.sum(axis=1) / Ns                                                 # exact: integer sums
    avgdl = np.where(avgdl > 0, avgdl, 1.0)
    K = k1 * ((1 - b) + b * L / avgdl[:, None])                                # [B, N]
    s = slot_of_cell[cell]
    hit = s >= 0                                                               # entries of query terms
    hq, hs, hd, tf = ent_q[hit], s[hit], ent_doc[hit], P.tf[ent[hit]]
    contrib = np.zeros((B, R, n_max))                                          # [B, R, N]; tf = 0 adds 0.0
    contrib[hq, hs, hd] = idf_slot[hq, hs] * (tf * (k1 + 1) / (tf + K[hq, hd]))

    # query tokens in order (a repeated token counts again); tokens of absent terms add 0.0: skipped.
    # Rows are put in order of decreasing token count, so step j only touches rows with a j-th token.
    occ_local, n_occ = qs.occ.gather(qids)
    occ_slot = slot[occ_local + np.repeat(np.cumsum(n_dist) - n_dist, n_occ)]
    occ_q = np.repeat(np.arange(B), n_occ)
    keep = occ_slot != R - 1
    occ_slot, occ_q = occ_slot[keep], occ_q[keep]
    J = np.bincount(occ_q, minlength=B)                                        # [B] tokens that score
    perm = np.argsort(-J, kind="stable")
    row_of = np.empty(B, dtype=np.int64)
    row_of[perm] = np.arange(B)
    occ = np.zeros((B, int(J.max()) if B else 0), dtype=np.int64)              # [B, J] (permuted rows)
    occ[row_of[occ_q], ragged_positions(J)] = occ_slot
    active = B - np.cumsum(np.bincount(J, minlength=occ.shape[1] + 1))        # rows with more than j tokens
    score = np.zeros((B, n_max))                                               # [B, N] (permuted rows)
    for j in range(occ.shape[1]):
        m = int(active[j])
        score[:m] += contrib[perm[:m], occ[:m, j]]
    for c, i in enumerate(qids.tolist()):
        out[i] = np.argsort(score[row_of[c], :Ns[c]])[::-1].tolist()
