#!/usr/bin/env bash
# Sets up ./.venv for this checkout: third-party packages come from one shared environment per
# machine (installed once, reused whenever it already satisfies requirements-dev.txt), and the
# Rust extension is built in release mode into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
base=${BPELM_BASE_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bpelm/base-env-py$pyver}

if [ ! -x "$base/bin/python" ]; then
    echo "setup: creating the shared environment $base"
    "$python" -m venv "$base"
fi
# pip only downloads what is missing; a satisfied environment costs a second or two.
if ! "$base/bin/python" -m pip install --disable-pip-version-check --dry-run \
        -r requirements-dev.txt 2>/dev/null | grep -q "Would install"; then
    :
else
    echo "setup: installing third-party packages into $base (once per machine)"
    "$base/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
base_site=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$base_site" > "$site/bpelm-shared-env.pth"

echo "setup: building the Rust extension (release, a minute or two on a fresh checkout)"
log=$(mktemp)
if ! VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$base/bin:$PATH" \
        maturin develop --release >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: maturin develop failed (full log above)" >&2
    exit 1
fi
rm -f "$log"
.venv/bin/python -c "import bpelm._core" || { echo "setup: the extension failed to import" >&2; exit 1; }
echo "setup: ready (.venv, bpelm $(.venv/bin/python -c 'import bpelm; print(bpelm.__version__)'))"
