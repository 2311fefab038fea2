"""The tokenizer half of bpelm: the `Tokenizer`, BPE training, GPT-2 files, corpus helpers.

Everything here needs only numpy (and the Rust extension); nothing imports torch.
"""

from bpelm.tokenizer.bpe_training import train_bpe
from bpelm.tokenizer.corpus import encode_corpus, load_tokenizer, token_dtype, train_tokenizer
from bpelm.tokenizer.tokenizer import Tokenizer, encode_file

__all__ = [
    "Tokenizer",
    "encode_corpus",
    "encode_file",
    "load_tokenizer",
    "token_dtype",
    "train_bpe",
    "train_tokenizer",
]
