#!/usr/bin/env bash
# Builds the release wheel as it would be published (manylinux2014 through zig, checked by
# maturin), installs it into a fresh virtualenv holding only the core dependencies (numpy,
# tqdm) and runs a tokenizer smoke test there, from outside the checkout: a packaging step
# that breaks (a missing data file, an extension that does not load) fails here. A second
# virtualenv, the same wheel with the training dependencies of the shared environment, runs
# `bpelm demo` (tokenizer, a few seconds of training, a sample) the way a user of the wheel
# would: a config or data file the wheel fails to ship fails here.
# WHEEL_COMPAT=manylinux_2_34 (what this glibc can certify without zig) overrides the target.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
base=${BPELM_BASE_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bpelm/base-env-py$pyver}
compat=${WHEEL_COMPAT:-manylinux2014}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== wheel ($compat)"
zig_flag=()
if [ "$compat" = manylinux2014 ]; then
    zig_flag=(--zig)  # links against glibc 2.17 whatever the build machine's glibc
fi
start=$SECONDS
PATH="$base/bin:$PATH" maturin build --quiet --release "${zig_flag[@]}" \
    --compatibility "$compat" --out "$tmp/dist" >"$tmp/build.log" 2>&1 || {
    cat "$tmp/build.log" >&2
    exit 1
}
wheel=$(ls "$tmp"/dist/*.whl)
echo "built $(basename "$wheel") in $((SECONDS - start)) s"

"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
# The core dependencies, and only they, from the shared environment (no network).
deps="$tmp/deps"
mkdir "$deps"
base_site=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for name in numpy numpy.libs tqdm; do
    [ -e "$base_site/$name" ] && ln -s "$base_site/$name" "$deps/$name"
done
for info in "$base_site"/numpy-*.dist-info "$base_site"/tqdm-*.dist-info; do
    ln -s "$info" "$deps/$(basename "$info")"
done
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" >"$site/core-deps.pth"
"$tmp/venv/bin/python" -m pip check --disable-pip-version-check

cd "$tmp"  # away from the checkout's python/ folder
"$tmp/venv/bin/python" - <<'PY'
import bz2
import gzip
import importlib.util
import lzma
import pathlib

import bpelm
from bpelm import Tokenizer, train_bpe

assert importlib.util.find_spec("torch") is None, "torch leaked into the core-only venv"
text = "the quick brown fox jumps over the lazy dog<|endoftext|>" * 200
pathlib.Path("corpus.txt").write_text(text, encoding="utf-8")
vocab, merges = train_bpe("corpus.txt", 300, ["<|endoftext|>"])
# The decompressors are linked into the extension (liblzma is C, built by zig here).
for suffix, compress in [(".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)]:
    pathlib.Path("corpus.txt" + suffix).write_bytes(compress(text.encode()))
    assert train_bpe("corpus.txt" + suffix, 300, ["<|endoftext|>"]) == (vocab, merges), suffix
tok = Tokenizer(vocab, merges, ["<|endoftext|>"])
ids = tok.encode(text, allowed_special="all")
assert tok.decode(ids) == text
try:
    tok.encode("user text <|endoftext|>")
except ValueError:
    pass
else:
    raise AssertionError("a special token in plain encode() was not refused")
tok.save("tok")
assert Tokenizer.load("tok") == tok
gpt2 = Tokenizer.gpt2()
assert gpt2.encode("Hello world, this is GPT-2.") == [15496, 995, 11, 428, 318, 402, 11571, 12, 17, 13]
print(f"wheel smoke test passed (bpelm {bpelm.__version__}, {len(ids)} tokens)")
PY

echo "== bpelm demo from the wheel"
# The wheel alone in a fresh virtualenv, and the shared environment's site-packages (torch,
# matplotlib, safetensors) after it on sys.path through a .pth file: no network, no second
# torch install. The demo runs in a folder with no ../shared beside it, so it takes the
# sample text and the config (tiny-cpu) that the wheel ships, not the checkout's.
"$python" -m venv "$tmp/venv-train"
"$tmp/venv-train/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
train_site=$("$tmp/venv-train/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$base_site" >"$train_site/base-env.pth"
mkdir "$tmp/demo-cwd"
cd "$tmp/demo-cwd"
"$tmp/venv-train/bin/python" -c 'import bpelm, sys; assert bpelm.__file__.startswith(sys.prefix), bpelm.__file__'
start=$SECONDS
# 0.1 minutes of training and a 300-token vocabulary: about 10 s on 2 CPUs.
"$tmp/venv-train/bin/bpelm" demo --work demo --device cpu --vocab-size 300 --minutes 0.1 \
    >"$tmp/demo.log" 2>&1 || {
    cat "$tmp/demo.log" >&2
    exit 1
}
grep -q "using the bundled sample" "$tmp/demo.log" || {
    cat "$tmp/demo.log" >&2
    echo "the demo did not run on the sample text the wheel ships" >&2
    exit 1
}
[ -s demo/run/loss.png ] && [ -s demo/run/summary.json ] && grep -q "demo finished" "$tmp/demo.log" || {
    cat "$tmp/demo.log" >&2
    echo "the demo did not finish its training run (no loss.png or summary.json)" >&2
    exit 1
}
echo "demo from the wheel passed in $((SECONDS - start)) s"
