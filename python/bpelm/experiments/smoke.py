"""Data for the studies' smoke size: small tokenizers and token arrays made in seconds on a CPU,
from the sample the package ships (stories) and, when given, a prefix of a web corpus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bpelm.experiments.tokenizer_stats import read_prefix
from bpelm.tokenizer.bpe_training import train_bpe
from bpelm.tokenizer.tokenizer import MERGES_NAME, VOCAB_NAME, Tokenizer, encode_file

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.txt"
END_OF_TEXT = "<|endoftext|>"
# Where a development checkout keeps the project's shared data (../shared/data beside it).
SHARED_WEB = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "web_128M.txt.xz"


def _split(text: str, valid_share: float = 0.1) -> tuple[str, str]:
    """(train, valid) cut at a document boundary near the end."""
    cut = int(len(text) * (1 - valid_share))
    boundary = text.find(END_OF_TEXT, cut)
    cut = boundary + len(END_OF_TEXT) if boundary >= 0 else cut
    return text[:cut], text[cut:]


def make_dataset(
    text: str, out: Path, vocab_size: int, log: Callable[[str], None] = print
) -> dict[str, str]:
    """OUT/{train,valid}.txt, a tokenizer in OUT/tok and OUT/{train,valid}.npy."""
    out.mkdir(parents=True, exist_ok=True)
    train_text, valid_text = _split(text)
    (out / "train.txt").write_text(train_text, encoding="utf-8")
    (out / "valid.txt").write_text(valid_text, encoding="utf-8")
    vocab, merges = train_bpe(out / "train.txt", vocab_size, [END_OF_TEXT])
    tok = Tokenizer(vocab, merges, [END_OF_TEXT])
    (out / "tok").mkdir(exist_ok=True)
    tok.save(out / "tok" / VOCAB_NAME, out / "tok" / MERGES_NAME)
    counts = {}
    for split in ("train", "valid"):
        counts[split] = encode_file(tok, out / f"{split}.txt", out / f"{split}.npy")
    log(
        f"{out}: {len(vocab)}-token tokenizer, {counts['train']:,} train and "
        f"{counts['valid']:,} validation tokens"
    )
    return {"train": str(out / "train.npy"), "valid": str(out / "valid.npy")}


def make_smoke_data(
    out: str | Path,
    *,
    web: str | Path | None = None,
    web_mb: float = 1.0,
    vocab_size: int = 512,
    log: Callable[[str], None] = print,
) -> None:
    """OUT/stories from the bundled sample and OUT/web from the first `web_mb` MB of `web`
    (default: the shared web corpus when present, else the sample again, said so)."""
    out = Path(out)
    make_dataset(SAMPLE.read_text(encoding="utf-8"), out / "stories", vocab_size, log)
    web_path = Path(web) if web is not None else SHARED_WEB
    if web_path.exists():
        text = read_prefix(web_path, int(web_mb * 1e6))
    else:
        if web is not None:
            raise FileNotFoundError(f"{web_path}: web corpus not found")
        log(f"{web_path} is absent: OUT/web is made from the bundled sample instead")
        text = SAMPLE.read_text(encoding="utf-8")
    make_dataset(text, out / "web", vocab_size, log)
