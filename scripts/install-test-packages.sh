#!/usr/bin/env bash
# Installs the Debian packages the tests run for real: redis-server 7 (the shared store the
# gateways and the front door reserve, settle and keep records in; tests start their own on
# 127.0.0.1 with a password, and TLS where they test it), and wrk (the load generator of
# benchmarks/bench_gateway.py, whose smoke run tests/benchmarks/test_smoke.py makes). Installing it starts nothing: there is
# no init system here (and policy-rc.d refuses it where there is one).
# Idempotent and quiet when everything is there; `apt-get update` runs first otherwise.
set -euo pipefail
packages=(redis-server wrk)
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
echo "[test-packages] installing ${missing[*]} (apt-get)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
redis-server --version >&2
