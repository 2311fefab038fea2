"""A slow, obviously correct byte-level BPE trainer (minbpe-style), the oracle for the tests.

The Rust trainer (`bpelm._core.train_bpe`) must produce exactly the same merges, in the same
order. The rules, spelled out once:

1. Split the text on the special tokens (leftmost match first, longest among those starting
   at the same place); no merge ever crosses a special token.
2. Split each remaining piece into pretokens (GPT-2's pattern by default; any other as its
   regex, the text between two matches a pretoken of its own, as bpelm does); no merge ever
   crosses a pretoken.
3. Count the pretokens as byte strings; a word's pairs are all its adjacent token pairs, each
   weighted by the word's count (so ``b"aaa"`` holds the pair ``(a, a)`` twice).
4. Repeatedly merge the most frequent pair; ties go to the greatest ``(left_bytes,
   right_bytes)``. Merging replaces non-overlapping occurrences from left to right.
5. Stop at ``256 + len(merges) + len(special_tokens) == vocab_size`` or when no pair is left.

Example:

>>> vocab, merges = train_bpe_reference("ab ab ab", 258)
>>> merges
[(b'a', b'b'), (b' ', b'ab')]
>>> vocab[257]
b' ab'
"""

from __future__ import annotations

from collections import Counter, defaultdict

import regex

from bpelm import _core
from bpelm.tokenizer.gpt2 import GPT2_PATTERN

# GPT-2's pretokenization pattern, verbatim.
_GPT2_RE = regex.compile(GPT2_PATTERN)

Pair = tuple[int, int]


def split_on_specials(text: str, special_tokens: list[str]) -> list[str]:
    """The pieces of `text` between special tokens (special tokens themselves dropped).

    >>> split_on_specials("a<|x|>b<|x|>", ["<|x|>"])
    ['a', 'b', '']
    """
    if not special_tokens:
        return [text]
    # Longest first, so that at one position the longest special token wins.
    alternatives = sorted(special_tokens, key=len, reverse=True)
    pattern = "|".join(regex.escape(s) for s in alternatives)
    return regex.split(pattern, text)


def compile_pattern(pattern: str) -> regex.Pattern:
    """The `regex` module's compilation of a split pattern (a bpelm name, as its regex in
    tiktoken's spelling, or a regex)."""
    if pattern == "gpt2":
        return _GPT2_RE
    return regex.compile(_core.split_pattern(pattern)[1])


def pretokens(text: str, compiled: regex.Pattern) -> list[str]:
    """The matches of `compiled` in `text`, with the text between two matches (or before the
    first, after the last) as a pretoken of its own.

    >>> pretokens("ab--cd", regex.compile(r"[a-z]+"))
    ['ab', '--', 'cd']
    """
    out: list[str] = []
    at = 0
    for m in compiled.finditer(text):
        if m.start() > at:
            out.append(text[at : m.start()])
        if m.end() > m.start():
            out.append(m.group())
        at = max(at, m.end())
    if at < len(text):
        out.append(text[at:])
    return out


def count_pretokens(text: str, special_tokens: list[str], pattern: str = "gpt2") -> Counter[bytes]:
    """How often each pretoken (as UTF-8 bytes) of `pattern` occurs outside special tokens."""
    compiled = compile_pattern(pattern)
    counts: Counter[bytes] = Counter()
    for piece in split_on_specials(text, special_tokens):
        counts.update(p.encode("utf-8") for p in pretokens(piece, compiled))
    return counts


def get_stats(ids: list[int]) -> Counter[Pair]:
    """Every adjacent pair of `ids`, overlapping ones included.

    >>> sorted(get_stats([1, 1, 1, 2]).items())
    [((1, 1), 2), ((1, 2), 1)]
    """
    return Counter(zip(ids, ids[1:]))


def merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """`ids` with non-overlapping occurrences of `pair` replaced by `new_id`, left to right.

    >>> merge([1, 1, 1, 2], (1, 1), 9)
    [9, 1, 2]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges(word_counts: dict[bytes, int], n_merges: int) -> list[tuple[bytes, bytes]]:
    """Up to `n_merges` merges learned on words (byte strings) with their counts.

    >>> learn_merges({b"aaa": 1, b"bc": 2}, 5)
    [(b'b', b'c'), (b'a', b'a'), (b'aa', b'a')]
    """
    words = [list(w) for w in word_counts]
    freqs = list(word_counts.values())

    # Pair counts over all words, and which words hold each pair (kept exact below).
    stats: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)
    for i, (ids, freq) in enumerate(zip(words, freqs)):
        for pair, n in get_stats(ids).items():
            stats[pair] += n * freq
            where[pair].add(i)

    vocab = {i: bytes([i]) for i in range(256)}
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < n_merges and stats:
        best_count = max(stats.values())
        best = max(
            (p for p, c in stats.items() if c == best_count),
            key=lambda p: (vocab[p[0]], vocab[p[1]]),
        )
        new_id = 256 + len(merges)
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        merges.append((vocab[best[0]], vocab[best[1]]))
        # Recount each affected word from scratch: subtract its old pairs, add its new ones.
        for i in list(where[best]):
            old = get_stats(words[i])
            words[i] = merge(words[i], best, new_id)
            new = get_stats(words[i])
            for pair, n in old.items():
                stats[pair] -= n * freqs[i]
                if stats[pair] == 0:
                    del stats[pair]
                if pair not in new:
                    where[pair].discard(i)
            for pair, n in new.items():
                stats[pair] += n * freqs[i]
                where[pair].add(i)
        del where[best]
    return merges


def train_bpe_reference(
    text: str, vocab_size: int, special_tokens: list[str] | None = None, pattern: str = "gpt2"
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Trains byte-level BPE on `text` with the split `pattern`; returns `(vocab, merges)`
    like `bpelm.train_bpe`."""
    specials = list(special_tokens or [])
    if vocab_size < 256 + len(specials):
        raise ValueError(
            f"vocab_size {vocab_size} is too small: it must be at least 256 + "
            f"{len(specials)} special tokens = {256 + len(specials)}"
        )
    n_merges = vocab_size - 256 - len(specials)
    merges = learn_merges(count_pretokens(text, specials, pattern), n_merges)
    vocab = {i: bytes([i]) for i in range(256)}
    for left, right in merges:
        vocab[len(vocab)] = left + right
    for j, token in enumerate(specials):
        vocab[256 + len(merges) + j] = token.encode("utf-8")
    return vocab, merges
