"""bpelm: a byte-level BPE tokenizer with a Rust core, and a from-scratch Transformer LM.

The tokenizer API is imported here; the model library (`bpelm.nn`, `bpelm.optim`, ...) is
imported on demand so that `import bpelm` does not pay for importing torch.
"""

from bpelm._core import __version__
from bpelm.tokenizer import Tokenizer, encode_file
from bpelm.trainer import train_bpe

__all__ = ["Tokenizer", "__version__", "encode_file", "train_bpe"]
