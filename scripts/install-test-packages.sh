#!/usr/bin/env bash
# Installs the Debian packages the tests run for real:
#   - redis-server 7 (the shared store the gateways and the front door reserve, settle and keep
#     records in; tests start their own on 127.0.0.1 with a password, and TLS where they test it);
#   - prometheus 2.42 (the server and promtool: the chart's alert rules are checked and
#     unit-tested by promtool, and a real Prometheus, started by the test on 127.0.0.1 in a
#     temporary directory, scrapes the local cluster's components and evaluates those rules).
# Installing them starts nothing: a policy-rc.d refusing every start is in place while apt-get
# runs (both ship an init script that would start a server on every address), and removed
# afterwards unless the machine had one already.
# Idempotent and quiet when everything is there; `apt-get update` runs first otherwise.
set -euo pipefail
packages=(redis-server prometheus)
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
echo "[test-packages] installing ${missing[*]} (apt-get)" >&2
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# scripts/install-test-packages.sh: no service starts while it installs\nexit 101\n' \
        | $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    own_policy=1
fi
cleanup() { if [[ $own_policy -eq 1 ]]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
# Another apt run on the machine holds the lock for a while at most: wait for it.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
redis-server --version >&2
promtool --version 2>&1 | head -n 1 >&2
