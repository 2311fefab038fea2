#!/usr/bin/env bash
# The GPU check of issue #14: every LM and tokenizer figure in one run (benches/gpu_check.py).
#
#   bash benches/gpu_check.sh --prepare .carry/gpu            # here: wheels + data (< 64 MiB)
#   bash benches/gpu_check.sh --from .carry/gpu --out "$OUT"  # on the GPU host, offline
#   bash benches/gpu_check.sh --smoke --out /tmp/gc           # toy sizes on a CPU (< 1 min)
#   bash benches/gpu_check.sh --device cpu --out /tmp/gc      # full size on a CPU (baseline)
#
# Python: $PYTHON, else ./.venv/bin/python when present, else python3 (on the GPU image, the
# python3 that holds PyTorch).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    if [[ -x "$here/../.venv/bin/python" ]]; then py="$here/../.venv/bin/python"; else py=python3; fi
fi
export PYTHONUNBUFFERED=1
exec "$py" "$here/gpu_check.py" "$@"
