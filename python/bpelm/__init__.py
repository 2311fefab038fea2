"""bpelm: a byte-level BPE tokenizer with a Rust core, and a from-scratch Transformer LM.

The tokenizer API is imported here; the model library (`bpelm.nn`, `bpelm.optim`, ...) is
imported on demand so that `import bpelm` does not pay for importing torch.
"""

from bpelm._core import __version__
from bpelm.trainer import train_bpe

__all__ = ["__version__", "train_bpe"]
