"""The fallback for `str` text: with `BPELM_NO_STR_LAYOUT=1` the bindings never read CPython's
private `str` layout and take CPython's own UTF-8 for every text (the path every other
interpreter takes), and every encode gives the same ids, and the same errors, as the layout
path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import bpelm._core as core

# Runs in this process and, with the variable set, in a fresh one; prints what it saw.
SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys, tempfile
    import bpelm._core as core
    import numpy as np

    class Str(str):
        pass

    texts = [
        "",
        "plain ASCII, the common case <|endoftext|> and more",
        "Latin-1: caf\\u00e9, na\\u00efve, \\u00ff",
        "UCS-2: \\u20ac, \\u4e2d\\u6587, \\u0645\\u0631\\u062d\\u0628\\u0627",
        "UCS-4: \\U0001f600 \\U0001f468\\u200d\\U0001f469 \\U0010ffff",
        "\\u00e9" + "x" * 200,
        "x" * 200 + "\\u20ac",
    ]
    # Long texts of each width, long enough to be cut between threads.
    texts += [(t + " ") * (600_000 // len(t)) for t in texts[2:5]]
    corpus = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8")
    corpus.write("\\n".join(texts[:7]) * 50)
    corpus.close()
    vocab, merges = core.train_bpe(corpus.name, 600, ["<|endoftext|>"], num_threads=1)
    tok = core.CoreTokenizer(vocab, merges, ["<|endoftext|>"])
    out = {
        "reads": core.reads_str_storage(),
        "one": [tok.encode(t) for t in texts],
        "subclass": [tok.encode(Str(t)) for t in texts],
        "array": [tok.encode_to_array(t).tolist() for t in texts],
        "batch1": tok.encode_batch(texts, 1),
        "batch2": tok.encode_batch(texts, 2),
    }
    try:
        tok.encode_batch(["fine", "x" * 600_000 + "\\ud800"], 2)
    except UnicodeEncodeError as e:
        out["error"] = str(e)
    # Digests: the ids run to millions.
    digest = lambda ids: hashlib.sha256(repr(ids).encode()).hexdigest()
    json.dump({k: v if k in ("reads", "error") else digest(v) for k, v in out.items()}, sys.stdout)
    """
)


def run(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=True,
    )
    return json.loads(done.stdout)


def test_forced_fallback_gives_the_same_ids_and_errors():
    forced = run({"BPELM_NO_STR_LAYOUT": "1"})
    assert forced["reads"] is False
    normal = run({"BPELM_NO_STR_LAYOUT": ""})
    assert normal["reads"] is core.reads_str_storage()
    assert "surrogates not allowed" in forced["error"]
    for key in ("one", "subclass", "array", "batch1", "batch2", "error"):
        assert forced[key] == normal[key], key
    assert forced["batch1"] == forced["one"] == forced["batch2"]
