"""bpelm: a byte-level BPE tokenizer with a Rust core, and a from-scratch Transformer LM.

The package has two halves, and the tree shows them:

- `bpelm.tokenizer`: `Tokenizer`, `train_bpe`, `encode_file` (numpy only, no torch);
- `bpelm.nn` (the model), `bpelm.generate` (sampling) and `bpelm.training` (config, data,
  AdamW, checkpoints, metrics, the training loop), which need torch;
- `bpelm.cli`: the `bpelm` command, a thin shell over the two.

The tokenizer API is imported here; the model library is imported on demand so that
`import bpelm` does not pay for importing torch.
"""

from bpelm._core import __version__
from bpelm.tokenizer import Tokenizer, encode_file, train_bpe

__all__ = ["Tokenizer", "__version__", "encode_file", "train_bpe"]
