"""Checks whether two trainers' first differing merge is a tie in the pair counts.

    python benches/merge_tie_check.py CORPUS K LEFT,RIGHT [LEFT,RIGHT ...]

Trains bpelm for K+1 merges on CORPUS, replays its first K merges (tiktoken's BPE with those
ranks) on every distinct pretoken (counted independently, by gigatoken), and prints how often
bpelm's merge K and each given pair (e.g. another trainer's merge K) occur at that point.
Equal counts mean the two trainers only broke a tie differently.
"""

from __future__ import annotations

import collections
import sys

import gigatoken
import tiktoken
from bpelm.tokenizer import train_bpe
from bpelm.tokenizer.gpt2 import EOT, GPT2_PATTERN


def main() -> int:
    path, k = sys.argv[1], int(sys.argv[2])
    others = [tuple(p.encode() for p in arg.split(",")) for arg in sys.argv[3:]]
    _vocab, merges = train_bpe(path, 256 + 1 + k + 1, [EOT], num_threads=2)
    ranks = {bytes([i]): i for i in range(256)}
    for i, (a, b) in enumerate(merges[:k]):
        ranks[a + b] = 256 + i
    enc = tiktoken.Encoding(
        "replay", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    token = {r: t for t, r in ranks.items()}
    with open(path, "rb") as f:
        counts = gigatoken.gigatoken_rs.pretokenized_counts(f.read(), EOT.encode())
    wanted = {merges[k], *others}
    pairs: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
    for word, n in counts:
        parts = [token[i] for i in enc._encode_bytes(bytes(word))]
        for pair in zip(parts, parts[1:]):
            if pair in wanted:
                pairs[pair] += n
    print(f"{len(counts)} distinct pretokens; bpelm's merge {k}: {merges[k]}")
    for pair in sorted(wanted):
        print(f"  {pair}: {pairs[pair]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
