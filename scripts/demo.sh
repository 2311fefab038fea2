#!/usr/bin/env bash
# The README's first command: set up ./.venv (builds the Rust extension), then run the main job:
# train a tokenizer on the bundled corpus, encode it and report the throughput and what it
# means for the 825 GB Pile, then train a small model briefly and print a sample.
# Arguments go to `bpelm demo` (see `.venv/bin/bpelm demo --help`), e.g. --no-train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bpelm demo "$@"
