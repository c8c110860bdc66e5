#!/usr/bin/env bash
# Installs the Debian tools `make images` and the image tests use, idempotently (quiet when
# everything is there):
#   - mmdebstrap: the images' Debian root filesystems, from Debian's packages, no daemon;
#   - podman + runc: the image tests run each image under a real OCI runtime (runc: crun refuses
#     this machine's hybrid cgroups);
#   - skopeo: inspects the archives and pushes them to a registry (docs/images.md);
#   - zstd: compresses the big vLLM layer (gzip of gigabytes costs minutes on 2 cores);
#   - gcc + libc6-dev: the pause binary is compiled statically from the Kubernetes source.
set -euo pipefail
packages=(mmdebstrap podman runc skopeo zstd gcc libc6-dev)
commands=(mmdebstrap podman runc skopeo zstd gcc)
missing=0
for cmd in "${commands[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing=1
done
# libc6-dev has no command of its own: its static libc is what `gcc -static` needs.
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || missing=1
if [[ $missing -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
echo "[image-tools] installing ${packages[*]} (apt-get)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
for cmd in "${commands[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "[image-tools] $cmd is still missing" >&2; exit 1; }
done
