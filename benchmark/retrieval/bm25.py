"""BM25 exactly as LaMP ranks profiles: ``rank_bm25.BM25Okapi`` semantics, batched over many small corpora.

LaMP (``prompts/prompts.py``) builds one ``BM25Okapi([doc.split() for doc in profile])`` per question and calls
``get_top_n(query.split(), profile, n=k)``. The semantics we reproduce, bit for bit:

* tokens: ``str.split()`` (whitespace, case kept, no stemming); a repeated query token counts every time;
* ``idf(t) = log(N - df + 0.5) - log(df + 0.5)`` with ``math.log``; a *negative* idf (df > N/2) is replaced by
  ``epsilon * average_idf``, the average taken over every term of the corpus *before* flooring and summed in
  rank_bm25's dict order (first appearance: document by document, token by token);
* ``score(d) += idf * (tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)))`` per query token, in query order;
* ranking ``np.argsort(scores)[::-1]`` (so ties come out as numpy's argsort leaves them, reversed).

Every floating-point operation is the same IEEE operation in the same order as rank_bm25 (logs from
``math.log``; sums one addition at a time, left to right: ``seq_sums``, never numpy's pairwise ``sum``), so the
scores are identical. The rankings are then ``np.argsort`` itself on each question's score row: questions with
the same corpus size go through one 2-d ``argsort(axis=1)``, which runs the same routine on every row as a 1-d
call does, so ties come out as in rank_bm25 too. ``tests/test_retrieval.py`` and ``scripts/bench_retrieval.py``
check the identity (full rankings, every question of the LaMP-mini pack).

Why not bm25s: its variants cannot express BM25Okapi. ``method="robertson"`` clips idf at 0 (or allows
negatives) instead of the epsilon * average-idf floor, ``"atire"`` uses ``log(N / df)``, scores are float32, and
its index is built for one large corpus, not thousands of 5-300 document profiles.

How: rank_bm25 spends 1.5-3 us per corpus token; a ``str`` object per token plus a dict lookup would already
take a good part of that, so there is no Python work per token (nor per question): numpy on whole batches of
questions, ``BATCH_ROWS`` tokens at a time (small arrays stay in memory the allocator already holds; fresh
pages are what costs).

1. ``split_keys`` (benchmark/retrieval/bm25_tokens.py): documents and queries are joined, encoded and split on
   their bytes; where documents repeat (questions of one user share a profile) each distinct one is parsed once,
   for up to ``PARSE_CHARS`` of corpus text. A token of <= 8 bytes *is* its 64-bit key; a longer one gets a hash
   that is checked byte for byte, so equal keys <=> equal tokens.
2. Rows: per question its documents' tokens in corpus order, then its query's tokens. One ``np.sort`` of
   (hash of the key, row) packed in 64 bits makes every (question, term) a run of rows in reading order (two
   terms sharing a hash are told apart by their keys); run boundaries give df, tf, the dict order (a term's
   first row) and, for each query token, the (document, tf) pairs it scores. Only the rows of query terms are
   sorted at first (a hash of (question, key) picks them); the corpora with a negative-idf query term, which
   need every term for epsilon * average idf, get a second sort of all their rows (or, when most corpora of
   the batch before needed that, a batch sorts all its rows at once).
3. The (query token, document) values, ordered by document and then query position, are added up left to
   right per document (``seq_sums``) into its score.

Deviations: rank_bm25 raises ZeroDivisionError when a corpus has no tokens at all; we return the argsort of
all-zero scores there, and ``[]`` for an empty corpus. A document without a query term gets 0 from that term,
also where rank_bm25 computes 0 / 0 = NaN (b = 1 and an empty document, or k1 = 0; never with the defaults).
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from benchmark.retrieval.bm25_tokens import GOLD, split_keys

PARSE_CHARS = 20_000_000       # corpus characters (with repeats) of a part whose distinct documents parse at once
BATCH_ROWS = 50_000            # rows (tokens of a question's documents and query) scored at once: ~400 kB arrays
HASH_BITS: int | None = None   # bits of the sort hash (None: all the row index leaves); tests force collisions
SUM_CELLS = 1 << 20            # cells of one zero-padded block in seq_sums
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


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The integers start[i] .. start[i] + count[i] - 1, for every i, concatenated."""
    count = np.asarray(count, dtype=np.int64)
    return np.repeat(start - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))


def _order(v: np.ndarray) -> np.ndarray:
    """``np.argsort`` of distinct non-negative integers, as one (faster) sort of (value, index) in 64 bits."""
    bits = len(v).bit_length()
    if not len(v) or int(v.max()) >= 1 << (63 - bits):
        return np.argsort(v)
    packed = v.astype(np.uint64) << np.uint64(bits)
    packed |= np.arange(len(v), dtype=np.uint64)
    packed.sort()
    return (packed & np.uint64((1 << bits) - 1)).view(np.int64)


def seq_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of each segment of ``values`` (lengths ``counts``), left to right as a Python loop adds.

    The segments are the columns of a zero-padded block [position, segment] (adding 0.0 after the end changes
    nothing) and ``np.add.reduce(axis=0)`` adds its rows one after the other: numpy sums pairwise only along
    the fast axis, which two or more columns keep from being axis 0 (tests/test_retrieval.py checks it)."""
    out, off = np.zeros(len(counts)), np.cumsum(counts) - counts
    order, i = np.flatnonzero(counts), 0
    split = len(order) * int(counts.max(initial=0)) > SUM_CELLS       # too big for one block: blocks of
    if split:                                                        # similar lengths, longest first
        order = order[np.argsort(-counts[order], kind="stable")]
    while i < len(order):
        seg = order[i:i + max(1, SUM_CELLS // int(counts[order[i]]))] if split else order
        i += len(seg)
        n = counts[seg]
        pos, width = ragged_positions(n), max(len(seg), 2)
        block = np.zeros((int(n.max()), width))                      # [longest, segments (>= 2)]
        block.reshape(-1)[pos * width + np.repeat(np.arange(len(seg)), n)] = values[np.repeat(off[seg], n) + pos]
        out[seg] = np.add.reduce(block, axis=0)[:len(seg)]
    return out


# ---------------------------------------------------------------------------------------------- ranking
def bm25_rank(query: str, docs: Sequence[str], *, k1: float = 1.5, b: float = 0.75,
              epsilon: float = 0.25) -> list[int]:
    """Indices of ``docs``, best first, exactly as ``BM25Okapi([d.split() for d in docs]).get_top_n``."""
    return bm25_rank_many([query], [docs], k1=k1, b=b, epsilon=epsilon)[0]


def bm25_rank_many(queries: Sequence[str], corpora: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75,
                   epsilon: float = 0.25) -> list[list[int]]:
    """One full ranking per (query, corpus) pair; each corpus is scored on its own (per-user BM25)."""
    if len(queries) != len(corpora):
        raise ValueError(f"bm25_rank_many: {len(queries)} queries but {len(corpora)} corpora")
    flat = list(itertools.chain.from_iterable(corpora))              # [E] corpus entries, question-major
    N = np.fromiter(map(len, corpora), dtype=np.int64, count=len(corpora))      # [B] corpus sizes
    off = np.r_[0, np.cumsum(N)]                                     # [B + 1] first entry of each question
    sample = flat[::16]                             # documents shared between questions (one user's profile)?
    repeats = len(set(sample)) < 0.95 * len(sample)                  # then parse each distinct one once, else
    part = PARSE_CHARS if repeats else 6 * BATCH_ROWS                # ~BATCH_ROWS tokens (~6 characters each)
    per_part = max(1, int(part * len(sample) / max(1, sum(map(len, sample)))))      # corpus entries per part
    cuts = [0, *(np.flatnonzero(np.diff(off[:-1] // per_part)) + 1).tolist(), len(corpora)]
    he, val = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]          # hits: (entry, value) per query token
    for lo, hi in zip(cuts, cuts[1:]):
        if hi > lo:
            e, v = _part_hits(queries[lo:hi], flat[off[lo]:off[hi]], N[lo:hi], repeats, k1, b, epsilon)
            he.append(e + off[lo])
            val.append(v)
    score = seq_sums(np.concatenate(val), np.bincount(np.concatenate(he), minlength=len(flat)))    # [E]

    # rankings: np.argsort per question; questions of one corpus size are the rows of one 2-d argsort
    out: list[list[int]] = [[]] * len(corpora)                       # (each slot is set below)
    order = np.argsort(N, kind="stable")
    for grp in np.split(order, np.flatnonzero(np.diff(N[order])) + 1) if len(order) else []:
        n = int(N[grp[0]])
        ranked = np.argsort(score[off[grp][:, None] + np.arange(n)], axis=1)[:, ::-1].tolist() if n else []
        for i, r in itertools.zip_longest(grp.tolist(), ranked):
            out[i] = [] if r is None else r
    return out


def _part_hits(queries: Sequence[str], docs: list[str], N: np.ndarray, repeats: bool, k1: float, b: float,
               epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """``_hits`` of corpus entries ``docs`` [E] (question-major, ``N`` [B] corpus sizes) for their question's
    query: every text parsed at once (each distinct document once, if ``repeats``), scored in batches."""
    texts, ent_doc = docs, np.arange(len(docs))
    if repeats:
        uid = dict(zip(dict.fromkeys(docs), itertools.count()))
        texts, ent_doc = list(uid), np.fromiter(map(uid.__getitem__, docs), dtype=np.int64, count=len(docs))
    key, tok0, ntok = split_keys([*texts, *queries])                 # [T] token keys; [D + B] first, count
    D, B, off = len(texts), len(N), np.r_[0, np.cumsum(N)]
    ent_tok0, ent_ntok = tok0[ent_doc], ntok[ent_doc]                # [E]
    q_rows = np.diff(np.r_[0, np.cumsum(ent_ntok)][off]) + ntok[D:]  # [B] rows of each question
    batch = (np.cumsum(q_rows) - q_rows) // (BATCH_ROWS if repeats else len(key) + 1)   # (else one batch)
    cuts = [0, *(np.flatnonzero(np.diff(batch)) + 1).tolist(), B]
    he, val, filter_rows = [np.zeros(0, dtype=np.int64)], [np.zeros(0)], True
    for lo, hi in zip(cuts, cuts[1:]):
        if hi > lo:
            e, v, n_neg = _hits(key, ent_tok0[off[lo]:off[hi]], ent_ntok[off[lo]:off[hi]], tok0[D + lo:D + hi],
                                ntok[D + lo:D + hi], N[lo:hi], k1, b, epsilon, filter_rows)
            he.append(e + off[lo])
            val.append(v)
            filter_rows = n_neg <= (hi - lo) // 2                    # worth it if (as here) few corpora need eps
    return np.concatenate(he), np.concatenate(val)


def _hits(key: np.ndarray, ent_tok0: np.ndarray, ent_ntok: np.ndarray, q_tok0: np.ndarray, q_ntok: np.ndarray,
          N: np.ndarray, k1: float, b: float, epsilon: float, filter_rows: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(entry [H], value [H], corpora that need eps): one value per query token and corpus entry with its term,
    ordered by entry and then query position; an entry's score is the left-to-right sum of its values.

    key [T]: token keys; entry e's are key[ent_tok0[e]:ent_tok0[e] + ent_ntok[e]] (E entries, question-major),
    question q's query's key[q_tok0[q]:...]; N [B]: corpus sizes. ``filter_rows``: sort the rows of the query
    terms first, and all rows only for corpora with a negative-idf query term (else all rows at once)."""
    B, E = len(N), len(ent_tok0)
    none = np.zeros(0, dtype=np.int64), np.zeros(0), 0
    # segments, question by question: its entries, then its query; rows = their tokens in that order
    ent_q = np.repeat(np.arange(B), N)                               # [E]
    qseg = np.cumsum(N) + np.arange(B)                               # [B] position of each query segment
    eseg = np.arange(E) + ent_q                                      # [E] positions of entry segments
    seg_tok0, seg_n, seg_info = (np.empty(E + B, dtype=np.int64) for _ in range(3))      # [S]
    seg_tok0[eseg], seg_tok0[qseg] = ent_tok0, q_tok0
    seg_n[eseg], seg_n[qseg] = ent_ntok, q_ntok
    seg_info[eseg], seg_info[qseg] = ent_q << 32 | np.arange(1, E + 1), np.arange(B) << 32   # question, entry + 1
    row0 = np.cumsum(seg_n) - seg_n                                  # [S] first row
    R = int(seg_n.sum())
    row_info = np.repeat(seg_info, seg_n)                            # [R] question << 32 | entry + 1 (0: query)
    row_key = key[_ranges(seg_tok0, seg_n)]                          # [R]
    rbits = R.bit_length()

    sel = np.arange(R)                               # the query rows and those whose (question, key) hash alike
    if filter_rows:
        qrows = _ranges(row0[qseg], q_ntok)                          # [Q]
        bits = max(10, (8 * len(qrows)).bit_length())
        tag = (row_info >> 32).view(np.uint64) * GOLD
        tag ^= row_key
        tag *= GOLD
        tag >>= np.uint64(64 - bits)                                 # [R]
        wanted = np.zeros(1 << bits, dtype=bool)
        wanted[tag[qrows]] = True
        sel = np.flatnonzero(wanted[tag])
    rows, keys, info, same = _term_runs(row_key, row_info, sel, rbits)
    ent, doc, ps, gp, gpos, df = _doc_groups(info, same)
    if not len(gp):
        return none
    qs = info >> 32                                                  # [n] question
    qpos = np.flatnonzero(~doc)                                      # query rows, right after their term's docs
    g = np.maximum(np.searchsorted(gpos, qpos, side="right") - 1, 0)     # the corpus term just before
    known = (keys[gpos[g]] == keys[qpos]) & (qs[gpos[g]] == qs[qpos]) & (gpos[g] < qpos)
    qpos, g = qpos[known], g[known]                                  # [Q] query tokens of corpus terms
    q, n = qs[qpos], df[g]
    logs = log_half(int(N.max()))
    w = logs[N[q] - n] - logs[n]                                     # [Q] idf of the token's term
    neg = np.zeros(B, dtype=bool)
    neg[q[w < 0]] = True
    if neg.any():                                # epsilon * average idf: every term of those corpora counts
        if filter_rows:
            doc0 = row0[qseg - N]                                    # [B] first document row
            rows2, _, info2, same2 = _term_runs(row_key, row_info, _ranges(doc0[neg], (row0[qseg] - doc0)[neg]),
                                                rbits)
            gpos2, df2 = _doc_groups(info2, same2)[4:]
            eps = _eps(rows2[gpos2], info2[gpos2] >> 32, df2, neg, N, logs, epsilon)
        else:
            eps = _eps(rows[gpos], qs[gpos], df, neg, N, logs, epsilon)
        w = np.where(w < 0, eps[q], w)                               # rank_bm25's idf[token]

    # one value per (query token, document with its term), in rank_bm25's operation order
    hp = _ranges(gp[g], n)                                           # [H] pair
    head = np.diff(g, prepend=-1) != 0                              # [Q] first query row of its term
    qend = np.repeat(qpos[head][np.cumsum(head) - 1], n)            # [H] end of the term's document rows
    nxt = np.where(hp + 1 < len(ps), ps[np.minimum(hp + 1, len(ps) - 1)], len(rows))
    tf = (np.minimum(nxt, qend) - ps[hp]).astype(np.float64)        # [H] the pair's rows
    he = ent[ps[hp]]                                                 # [H] entry
    length = ent_ntok.astype(np.float64)                             # [E] document lengths
    avgdl = np.bincount(ent_q, weights=length, minlength=B) / np.maximum(N, 1)    # exact: integer sums
    K = k1 * ((1 - b) + b * length[he] / avgdl[ent_q[he]])
    val = np.repeat(w, n) * (tf * (k1 + 1) / (tf + K))               # [H]
    order = _order(he << rbits | np.repeat(rows[qpos], n))           # by entry, then query row (= position)
    return he[order], val[order], int(neg.sum())


def _term_runs(row_key: np.ndarray, row_info: np.ndarray, rows: np.ndarray,
               rbits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` (ascending) sorted by term, i.e. (question, key), then row: one sort of (hash of the key, row)
    packed in 64 bits, and terms sharing a hash are told apart by their keys. -> rows, keys, info [n] and
    same [n - 1]: whether the next row has the same term."""
    srt = row_key[rows] * GOLD
    srt >>= np.uint64(64 - min(HASH_BITS or 64, 64 - rbits))
    srt <<= np.uint64(rbits)
    srt |= rows.view(np.uint64)
    srt.sort()
    rows = (srt & np.uint64((1 << rbits) - 1)).view(np.int64)        # [n] rows, sorted
    srt >>= np.uint64(rbits)                                         # [n] their hashes
    keys, info = row_key[rows], row_info[rows]
    qs = info >> 32
    same_q, same_key = qs[1:] == qs[:-1], keys[1:] == keys[:-1]      # [n - 1]
    mixed = same_q & ~same_key
    mixed &= srt[1:] == srt[:-1]
    if mixed.any():                                                  # two terms, one hash: order by (key, row)
        run = np.cumsum(np.r_[True, ~same_q | (srt[1:] != srt[:-1])])
        at = np.flatnonzero(np.isin(run, run[1:][mixed]))
        fix = at[np.lexsort((rows[at], keys[at], run[at]))]
        rows[at], keys[at], info[at] = rows[fix], keys[fix], info[fix]
        same_key = keys[1:] == keys[:-1]
    return rows, keys, info, same_q & same_key


def _doc_groups(info: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, ...]:
    """From term runs: ent [n] (entry, -1 for a query row), doc [n] (not a query row), ps [P] (where each
    (document, term) pair's rows start; a term's pairs are consecutive), gp [G] (the first pair of each term
    with documents), gpos [G] (its first row) and df [G]."""
    ent = (info & 0xFFFFFFFF) - 1
    doc = ent >= 0
    new_g = np.r_[True, ~same][:len(info)]                           # [n] a term's rows start
    new_pair = np.r_[True, ent[1:] != ent[:-1]][:len(info)]
    new_pair |= new_g
    new_pair &= doc
    ps = np.flatnonzero(new_pair)
    gp = np.flatnonzero(new_g[ps])
    return ent, doc, ps, gp, ps[gp], np.diff(gp, append=len(ps))


def _eps(first: np.ndarray, q: np.ndarray, df: np.ndarray, neg: np.ndarray, N: np.ndarray, logs: np.ndarray,
         epsilon: float) -> np.ndarray:
    """[B] epsilon * average idf of the corpora ``neg`` (0 elsewhere), from every term's first row, question
    and df: the idfs are summed one by one in rank_bm25's dict order, i.e. by first row."""
    g = np.flatnonzero(neg[q])
    q = q[g]
    idf = logs[N[q] - df[g]] - logs[df[g]]
    n_terms = np.bincount(q, minlength=len(N))
    return epsilon * (seq_sums(idf[_order(first[g])], n_terms) / np.maximum(n_terms, 1))
