#!/usr/bin/env bash
# Runs every test: the Rust crate's unit tests, then the Python suite against a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== cargo test"
cargo test --release --quiet
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
