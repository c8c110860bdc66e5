#!/usr/bin/env bash
# Installs the Debian packages the local cluster's real node runs: containerd 1.6 and runc (the
# container runtime), the CNI plugins (bridge, host-local, portmap, loopback), iptables and
# ipset (kube-proxy and the NetworkPolicy controller program them), plus iproute2 and
# util-linux for the node's namespaces. Installing them starts nothing: there is no init system
# here, and the cluster runs containerd itself inside namespaces of its own.
# Idempotent and quiet when everything is there; `apt-get update` runs first otherwise.
set -euo pipefail
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    echo "error: no apt-get/dpkg: the node's packages come from Debian's archive; use Debian 12+ or Ubuntu 22.04+ (make prerequisites lists every requirement)" >&2
    exit 1
fi
packages=(containerd runc containernetworking-plugins iptables ipset iproute2 util-linux)
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
echo "[node-packages] installing ${missing[*]} (apt-get)" >&2
$sudo apt-get update -qq
# policy-rc.d-style guard is not needed: without an init system the packages start no daemon.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
containerd --version >&2
runc --version | head -n 1 >&2
