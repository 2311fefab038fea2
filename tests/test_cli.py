"""The `bpelm` command end to end on tiny data, run in-process through `main([...])`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bpelm.cli import main
from bpelm.generate import IncrementalDecoder
from bpelm.tokenizer import load_tokenizer

SAMPLE = Path(__file__).resolve().parent.parent / "python" / "bpelm" / "data" / "sample.txt"

TINY_TOML = """
[model]
vocab_size = {vocab}
context_length = 16
d_model = 32
num_layers = 1
num_heads = 2
d_ff = 64

[train]
train_data = "{data}/train.npy"
val_data = "{data}/valid.npy"
tokenizer = "{data}/tok"
batch_size = 4
max_steps = 2
warmup_steps = 1
eval_every = 2
eval_batches = 2
log_every = 1
checkpoint_every = 1
keep_last = 3
device = "cpu"
compile = false
"""


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer and train/valid token arrays made with the CLI from the bundled sample."""
    d = tmp_path_factory.mktemp("cli")
    text = SAMPLE.read_text(encoding="utf-8")
    (d / "train.txt").write_text(text[:40_000], encoding="utf-8")
    (d / "valid.txt").write_text(text[40_000:50_000], encoding="utf-8")
    assert (
        main(
            [
                "tokenizer",
                "train",
                "--input",
                str(d / "train.txt"),
                "--vocab-size",
                "300",
                "--out",
                str(d / "tok"),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    for split in ("train", "valid"):
        assert (
            main(
                [
                    "tokenizer",
                    "encode",
                    "--tokenizer",
                    str(d / "tok"),
                    "--input",
                    str(d / f"{split}.txt"),
                    "--out",
                    str(d / f"{split}.npy"),
                ]
            )
            == 0
        )
    return d


def test_tokenizer_outputs(corpus: Path) -> None:
    for name in ("vocab.json", "merges.txt", "bpelm.json"):
        assert (corpus / "tok" / name).exists(), name
    ids = np.load(corpus / "train.npy")
    assert ids.dtype == np.uint16 and 5_000 < len(ids) <= 40_000
    assert int(ids.max()) < 300


def test_encode_reports_throughput(corpus: Path, capsys) -> None:
    rc, out, _ = run(
        [
            "tokenizer",
            "encode",
            "--tokenizer",
            str(corpus / "tok"),
            "--input",
            str(corpus / "valid.txt"),
            "--out",
            str(corpus / "again.bin"),
        ],
        capsys,
    )
    assert rc == 0 and "MB/s" in out and "tokens" in out
    assert np.array_equal(
        np.fromfile(corpus / "again.bin", dtype=np.uint16), np.load(corpus / "valid.npy")
    )


def test_compressed_input_is_accepted(corpus: Path, tmp_path: Path, capsys) -> None:
    import lzma

    xz = tmp_path / "valid.txt.xz"
    xz.write_bytes(lzma.compress((corpus / "valid.txt").read_bytes()))
    rc, out, _ = run(
        [
            "tokenizer",
            "encode",
            "--tokenizer",
            str(corpus / "tok"),
            "--input",
            str(xz),
            "--out",
            str(tmp_path / "v.npy"),
        ],
        capsys,
    )
    size = (corpus / "valid.txt").stat().st_size
    assert rc == 0 and f"encoded {size / 1e6:.1f} MB" in out
    assert np.array_equal(np.load(tmp_path / "v.npy"), np.load(corpus / "valid.npy"))
    # Decompressed as it was read: no copy was ever written beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy", "valid.txt.xz"]


def test_train_resume_generate_eval(corpus: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(vocab=300, data=corpus.as_posix()))
    run_dir = tmp_path / "run"
    rc, _, err = run(["train", "--config", str(config), "--out", str(run_dir), "--quiet"], capsys)
    assert rc == 0, err
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train_loss" in r] == [1, 2]
    assert (run_dir / "loss.png").exists() and (run_dir / "ckpt_0000002.pt").exists()

    # Resume the run in place for one more step; the config comes from the run's config.json.
    rc, out, err = run(
        ["train", "--resume", str(run_dir), "--set", "max_steps=3", "--quiet"],
        capsys,
    )
    assert rc == 0, err
    assert "resumed from" in out and "ckpt_0000002.pt" in out
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train_loss" in r] == [1, 2, 3]

    # Generate: the tokenizer directory comes from the checkpoint.
    rc, out, err = run(
        [
            "generate",
            "--checkpoint",
            str(run_dir),
            "--prompt",
            "Once upon",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert rc == 0, err
    assert out.startswith("Once upon") and len(out) > len("Once upon\n")
    rc, out2, _ = run(
        [
            "generate",
            "--checkpoint",
            str(run_dir / "ckpt_0000003.pt"),
            "--prompt",
            "Once upon",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert out2 == out  # same seed, same text
    rc, out, _ = run(
        [
            "generate",
            "--checkpoint",
            str(run_dir),
            "--prompt",
            "The",
            "--num-samples",
            "2",
            "--max-new-tokens",
            "4",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert rc == 0 and "sample 1/2" in out and "sample 2/2" in out

    rc, out, _ = run(
        [
            "eval",
            "--checkpoint",
            str(run_dir / "best.pt"),
            "--data",
            str(corpus / "valid.npy"),
            "--batches",
            "2",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert rc == 0 and "perplexity" in out
    loss = float(out.split("loss ")[1].split()[0])
    ppl = float(out.split("perplexity ")[1].split()[0])
    assert np.isclose(np.exp(loss), ppl, rtol=1e-3) and 0 < loss < np.log(300) + 1
    # Bits per byte: the same nats spread over the bytes the scored tokens spell, base 2.
    bpb = float(out.split("nats/token, ")[1].split()[0])
    scored = int(out.split("over ")[1].split()[0].replace(",", ""))
    spelled = load_tokenizer(corpus / "tok").decode_bytes(
        np.load(corpus / "valid.npy")[1 : scored + 1].tolist()
    )
    assert np.isclose(bpb, loss * scored / (len(spelled) * np.log(2)), rtol=1e-3)


def test_errors_name_the_file_or_key(corpus: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.txt"
    rc, _, err = run(
        [
            "tokenizer",
            "train",
            "--input",
            str(missing),
            "--vocab-size",
            "300",
            "--out",
            str(tmp_path / "t"),
        ],
        capsys,
    )
    assert rc == 1 and str(missing) in err
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(vocab=300, data=corpus.as_posix()))
    rc, _, err = run(["train", "--config", str(config), "--set", "d_modle=8"], capsys)
    assert rc == 1 and "d_modle" in err
    rc, _, err = run(["train", "--config", str(config), "--set", "batch_size=big"], capsys)
    assert rc == 1 and "batch_size" in err
    rc, _, err = run(["generate", "--checkpoint", str(tmp_path / "none.pt")], capsys)
    assert rc == 1 and "none.pt" in err


def test_incremental_decoder_holds_back_partial_characters(corpus: Path) -> None:
    from bpelm.tokenizer import Tokenizer

    tok = Tokenizer.from_files(corpus / "tok" / "vocab.json", corpus / "tok" / "merges.txt")
    text = "née 🙂 ok"
    ids = tok.encode(text)
    dec = IncrementalDecoder(tok)
    pieces = [dec.push(i) for i in ids] + [dec.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_help_and_module_entry_point() -> None:
    for argv in (["--help"], ["train", "--help"], ["tokenizer", "encode", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = subprocess.run(
        [sys.executable, "-m", "bpelm", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for command in ("download", "tokenizer", "train", "generate", "eval", "demo"):
        assert command in out.stdout


def test_demo_without_training_on_given_text(tmp_path: Path, capsys) -> None:
    small = tmp_path / "small.txt"
    small.write_text(SAMPLE.read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    argv = ["demo", "--no-train", "--data", str(small), "--work", str(tmp_path / "w")]
    argv += ["--vocab-size", "300", "--device", "cpu"]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert "MB/s" in out and "the Pile (825 GB)" in out and "min on 1 core" in out
    # 27 KB of training text is timed repeated to 10 MB, not extrapolated from milliseconds.
    timed_mb = [float(line.split(": ")[1].split(" MB")[0]) for line in out.splitlines()
                if line.startswith("encode, 1 thread")]  # fmt: skip
    assert timed_mb and timed_mb[0] >= 10.0
    assert not (tmp_path / "w" / "timing.txt").exists()  # the repeated copy is removed
    n_train = np.load(tmp_path / "w" / "train.npy").size
    n_valid = np.load(tmp_path / "w" / "valid.npy").size
    assert n_train > 8 * n_valid > 0  # about a tenth held out
    # A second run in the same directory sees the same split.
    rc, _, err = run(argv, capsys)
    assert rc == 0, err
    assert np.load(tmp_path / "w" / "train.npy").size == n_train


def test_a_run_resumes_from_another_working_directory(
    corpus: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # The config names its data relative to where the run starts; config.json must not.
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(corpus)
    config = work / "tiny.toml"
    config.write_text(TINY_TOML.format(vocab=300, data="data"))
    monkeypatch.chdir(work)
    rc, _, err = run(["train", "--config", "tiny.toml", "--out", "run", "--quiet"], capsys)
    assert rc == 0, err
    recorded = json.loads((work / "run" / "config.json").read_text())["train"]
    for key in ("train_data", "val_data", "tokenizer"):
        assert Path(recorded[key]).is_absolute(), key
    monkeypatch.chdir(tmp_path)  # elsewhere: the relative paths would no longer resolve
    rc, out, err = run(
        ["train", "--resume", str(work / "run"), "--set", "max_steps=3", "--quiet"], capsys
    )
    assert rc == 0, err
    assert "resumed from" in out


def test_a_missing_data_file_names_its_config_key(corpus: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(vocab=300, data=corpus.as_posix()))
    rc, _, err = run(
        ["train", "--config", str(config), "--set", f"val_data={tmp_path / 'nope.npy'}"],
        capsys,
    )
    assert rc == 1 and "train.val_data" in err and "nope.npy" in err


def test_tokenizer_train_reports_time_memory_and_longest_token(tmp_path: Path, capsys) -> None:
    text = tmp_path / "t.txt"
    text.write_text("the thesis of the theatre " * 300 + "<|endoftext|>" + "a" * 40)
    rc, out, err = run(
        ["tokenizer", "train", "--input", str(text), "--vocab-size", "280", "--out",
         str(tmp_path / "tok")],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    assert " s, peak memory " in out and " MB " in out
    vocab = json.loads((tmp_path / "tok" / "vocab.json").read_text())
    longest = max(len(k) for k in vocab if k != "<|endoftext|>")
    # vocab.json spells bytes in GPT-2's printable form, one character per byte.
    assert f"longest token {longest} bytes" in out
