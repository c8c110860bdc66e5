#!/usr/bin/env bash
# Installs what `make bench-gateway` needs, idempotently (each step is skipped when done):
#   - wrk, the HTTP load generator (Debian package; apt-get update first);
#   - LiteLLM's proxy, pinned to litellm[proxy]==1.100.0 (newer releases' `proxy` extra needs a
#     `litellm-proxy` package the registry does not serve), in its own venv
#     .local/bench/litellm-venv so its many pins never touch the project's .venv;
#   - py-spy, the sampling profiler (a binary inside a PyPI wheel), in .local/bench/tools-venv.
# Usage: scripts/install-bench-tools.sh [DEST]   (DEST defaults to <repo>/.local/bench)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/.local/bench}"
litellm_version="1.100.0"
pyspy_version="0.4.3"
mkdir -p "$dest"

if ! command -v wrk >/dev/null 2>&1; then
    echo "[bench-tools] installing wrk (apt-get)" >&2
    if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

litellm_venv="$dest/litellm-venv"
if ! "$litellm_venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('litellm') != '$litellm_version')" 2>/dev/null \
    || [[ ! -x "$litellm_venv/bin/litellm" ]]; then
    echo "[bench-tools] installing litellm[proxy]==$litellm_version into $litellm_venv" >&2
    python3 -m venv "$litellm_venv"
    "$litellm_venv/bin/python" -m pip install --quiet --upgrade pip
    "$litellm_venv/bin/python" -m pip install --quiet "litellm[proxy]==$litellm_version"
fi

tools_venv="$dest/tools-venv"
if [[ ! -x "$tools_venv/bin/py-spy" ]]; then
    echo "[bench-tools] installing py-spy==$pyspy_version into $tools_venv" >&2
    python3 -m venv "$tools_venv"
    "$tools_venv/bin/python" -m pip install --quiet "py-spy==$pyspy_version"
fi

wrk --version 2>&1 | head -n 1 >&2 || true
"$litellm_venv/bin/litellm" --version 2>/dev/null | tail -n 1 >&2 || true
"$tools_venv/bin/py-spy" --version >&2
