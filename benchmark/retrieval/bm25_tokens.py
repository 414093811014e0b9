"""BM25's tokeniser: ``str.split()`` over many texts at once, each token as an exact 64-bit key, with no Python
object per token (benchmark/retrieval/bm25.py scores with these keys).

Texts are joined, encoded and split on their bytes. A token of <= 8 UTF-8 bytes *is* its 64-bit key (its bytes,
the bytes above it set to 0xFF, a byte UTF-8 never uses); a longer one gets a hash above a low byte 0xFF (a first
byte no token has) that is checked byte for byte against the tokens whose hashes sort next to it, so equal keys
<=> equal tokens. Non-ASCII texts are moved to the end and their non-ASCII spaces mapped to " " first, so the
tokens are exactly ``str.split()``'s (``tests/test_retrieval.py`` checks every code point).
"""
from __future__ import annotations

import re
from typing import Iterator, Sequence

import numpy as np

GOLD = np.uint64(0x9E3779B97F4A7C15)     # odd: x * GOLD mixes x's bits upwards (also the scorer's sort hash)
_ONES = np.uint64(2 ** 64 - 1)

# What str.split() splits on (Py_UNICODE_ISSPACE): ASCII 9-13 and 28-32, which split_keys tests arithmetically,
# and a few non-ASCII characters; none above U+3000 (tests/test_retrieval.py checks every code point)
SPACES = [c for c in range(0x3001) if chr(c).isspace()]
assert [c for c in SPACES if c < 0x80] == [*range(9, 14), *range(28, 33)]
_WIDE_SPACE = re.compile("[%s]" % "".join(chr(c) for c in SPACES if c >= 0x80))


def split_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[t.split() for t in texts]`` as exact 64-bit keys, without a ``str`` per token.

    -> (key [T] uint64; first [X], n [X]: text i's tokens are ``key[first[i]:first[i] + n[i]]``). Equal keys
    <=> equal tokens: a token of <= 8 UTF-8 bytes is its bytes with the bytes above it set to 0xFF (a byte
    UTF-8 never uses); a longer one is a hash above a low byte 0xFF (a first byte no token has)."""
    X = len(texts)
    size = np.fromiter(map(len, texts), dtype=np.int64, count=X) + 1     # [X] characters and a separator
    big, tail = "\n".join([*texts, " " * 7]), []                     # 8 bytes from every token start
    if big.isascii():
        buf = big.encode("ascii")
    else:                                   # non-ASCII texts move to the end, in UTF-8 (the rest is copied)
        texts = list(texts)
        tail = np.flatnonzero(~np.fromiter(map(str.isascii, texts), dtype=bool, count=X)).tolist()
        wide = [_WIDE_SPACE.sub(" ", texts[i]) for i in tail]        # other spaces -> " ": same tokens
        for i in tail:
            texts[i] = ""
        size[tail] = 1
        buf = b"".join([("\n".join(texts) + "\n").encode("ascii"),
                        "\n".join([*wide, " " * 7]).encode("utf-8", "surrogatepass")])
    text0 = np.cumsum(size) - size                                   # [X] first byte (blank for the tail)
    if tail:
        wide_size = np.array([len(t.encode("utf-8", "surrogatepass")) + 1 for t in wide])
        text0 = np.r_[text0, text0[-1] + size[-1] + np.cumsum(wide_size) - wide_size]    # [X + tail]
    b = np.frombuffer(buf, dtype=np.uint8)                           # [C]
    tok = np.zeros(len(b) + 2, dtype=bool)                           # [C + 2] byte of a token (padded)
    t = np.empty(len(b) + 1, dtype=np.uint8)                         # [C + 1] scratch
    np.subtract(b, 9, out=t[:-1])                                    # ASCII spaces: 9-13 and 28-32
    np.greater(t[:-1], 4, out=tok[1:-1])
    t[:-1] -= 19
    np.greater(t[:-1], 4, out=t[:-1].view(bool))
    tok[1:-1] &= t[:-1].view(bool)
    np.not_equal(tok[1:], tok[:-1], out=t.view(bool))
    edge = np.flatnonzero(t.view(bool))                              # [2T] token starts and ends
    start, length = edge[0::2], edge[1::2] - edge[0::2]              # [T] first byte, bytes
    first = np.searchsorted(edge, text0) // 2                        # [X (+ tail)] first token
    n = np.diff(first, append=len(start))                            # [X (+ tail)] up to the next text's
    first[tail], n[tail] = first[X:], n[X:]                          # (a tail text: not its blank slot)
    words = np.ndarray((len(b) - 7,), dtype="<u8", buffer=buf, strides=(1,))   # words[i] = bytes i..i+7
    key = words[start]
    key |= _upper(length)
    long_ = np.flatnonzero(length > 8)
    if len(long_):
        key[long_] = _long_keys(buf, words, start[long_], length[long_])
    return key, first[:X], n[:X]


def _upper(n: np.ndarray) -> np.ndarray:
    """Per length n, the bits of a little-endian word above its first n bytes (none from n = 8 on)."""
    shift = np.left_shift(n, 3, dtype=np.uint64, casting="unsafe")
    return np.left_shift(_ONES, shift, out=shift)                    # numpy: a shift >= 64 gives 0


def _long_keys(buf: bytes, words: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Keys of tokens longer than 8 bytes: a hash above a low byte 0xFF, checked byte for byte between tokens
    whose hashes sort next to each other (on any doubt, exact ids from a dict instead)."""
    L, h = len(start), words[start].copy()                           # [L]
    for k, at in _word_steps(length):
        h[at] = (h[at] * GOLD) ^ (words[start[at] + k] & ~_upper(length[at] - k))
    h *= GOLD
    h ^= h >> np.uint64(29)
    h ^= length.astype(np.uint64)
    h >>= np.uint64(8)                                               # [L] 56 bits: the key is h << 8 | 0xFF
    bits = L.bit_length()                                            # one sort of (top of h, index) in 64 bits:
    srt = np.sort(((h >> np.uint64(max(0, bits - 8))) << np.uint64(bits)) | np.arange(L, dtype=np.uint64))
    tie = np.flatnonzero(srt[1:] >> np.uint64(bits) == srt[:-1] >> np.uint64(bits))
    low = np.uint64((1 << bits) - 1)                                 # neighbours whose tops tie must be equal
    a, z = (srt[tie] & low).view(np.int64), (srt[tie + 1] & low).view(np.int64)    # (equal hashes are among them)
    same = (length[a] == length[z]).all() and (words[start[a]] == words[start[z]]).all()
    for k, at in _word_steps(length[a]) if same else ():
        same = not ((words[start[a[at]] + k] ^ words[start[z[at]] + k]) & ~_upper(length[a[at]] - k)).any()
        if not same:
            break
    if not same:                                                     # never seen; here for exactness
        ids: dict[bytes, int] = {}
        h = np.fromiter((ids.setdefault(buf[s:s + n], len(ids)) for s, n in zip(start.tolist(), length.tolist())),
                        dtype=np.uint64, count=L)
    return (h << np.uint64(8)) | np.uint64(0xFF)


def _word_steps(length: np.ndarray) -> Iterator[tuple[int, slice | np.ndarray]]:
    """For tokens of > 8 bytes: (byte offset k, the tokens that go on past k) for k = 8, 16, ..."""
    at = np.flatnonzero(length > 16)
    for k in range(8, int(length.max(initial=0)), 8):
        if k > 8:
            at = at[length[at] > k]
        yield k, slice(None) if k == 8 else at
