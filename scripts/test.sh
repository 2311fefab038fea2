#!/usr/bin/env bash
# Runs every test: style checks, the Rust crate's unit tests, then the Python suite against a
# release build of the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== style (cargo fmt, clippy, ruff)"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
# The bindings too (behind the `python` feature; maturin builds with it).
cargo clippy --quiet --all-targets --features python -- -D warnings
.venv/bin/python -m ruff check --quiet .
.venv/bin/python -m ruff format --check --quiet .
echo "== cargo test"
cargo test --release --quiet
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
