"""Where a plaintext API key (or its secret part) can be found after the fact: every object of
every listable kind in the cluster, files (logs, ledgers, the audit log) and texts.

A key is looked for as itself and inside base64 at every alignment, so a copy in a Secret's data,
an annotation or a log line that base64-encoded a larger blob is found too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from paitient_common.kubeapi import Kube, KubeError

# Kinds an API server may list but not serve at the moment (an aggregated API without its
# backend) answer these; anything else is a failure of the scan, not an absence of keys.
UNSERVED = frozenset({404, 405, 503})


def needles(keys: Iterable[str]) -> dict[str, str]:
    """What to look for, by a name that says what it is without printing it (pure)."""
    found: dict[str, str] = {}
    for n, key in enumerate(keys):
        secret = key.split("_", 2)[2]
        for what, text in ((f"key {n}", key), (f"key {n}'s secret", secret)):
            found[what] = text
            for shift, form in enumerate(base64_forms(text)):
                found[f"{what} in base64 (offset {shift})"] = form
    return found


def base64_forms(text: str) -> list[str]:
    """The part of any base64 encoding of data containing ``text`` that depends on ``text``
    alone, for each of the three byte alignments it can have (pure)."""
    raw = text.encode()
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Skip the characters the bytes before it share; the last group shares the bytes after.
        forms.append(encoded[(shift * 4 + 2) // 3 : len(encoded) - 4])
    return forms


def _listable(kube: Kube) -> Iterator[tuple[str, str]]:
    """(list path, kind) of every kind the API server lists, core and every group."""
    groups = [f"/api/{v}" for v in kube.request("GET", "/api")["versions"]]
    groups += [
        f"/apis/{g['preferredVersion']['groupVersion']}"
        for g in kube.request("GET", "/apis")["groups"]
    ]
    for base in groups:
        try:
            resources = kube.request("GET", base)["resources"]
        except KubeError as exc:
            if exc.status in UNSERVED:
                continue
            raise
        for r in resources:
            if "/" not in r["name"] and "list" in r.get("verbs", []):
                yield f"{base}/{r['name']}", r["kind"]


def in_cluster(kube: Kube, looked_for: dict[str, str]) -> list[str]:
    """Every object that holds one of ``looked_for``: "<what> in <Kind> <ns>/<name>"."""
    found = []
    for path, kind in _listable(kube):
        try:
            items = kube.request("GET", path).get("items", [])
        except KubeError as exc:
            if exc.status in UNSERVED:
                continue
            raise
        for obj in items:
            text = json.dumps(obj)
            if kind == "Secret":  # the values themselves too, not only their encoding
                text += " ".join(
                    base64.b64decode(v).decode(errors="replace")
                    for v in (obj.get("data") or {}).values()
                )
            meta = obj.get("metadata") or {}
            where = f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}"
            found += [f"{what} in {where}" for what, n in looked_for.items() if n in text]
    return found


def in_files(
    paths: Iterable[Path], looked_for: dict[str, str], offsets: dict[Path, int]
) -> list[str]:
    """Every file (directories: every file under them) that holds one of ``looked_for``, read
    from ``offsets[path]`` on when given (a log shared with what came before)."""
    found = []
    for top in paths:
        for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
            if not path.is_file():
                continue
            with path.open("rb") as fh:
                fh.seek(offsets.get(path, 0))
                data = fh.read()
            found += [f"{what} in {path}" for what, n in looked_for.items() if n.encode() in data]
    return found


def in_texts(texts: dict[str, str], looked_for: dict[str, str]) -> list[str]:
    """Every named text (e.g. a pod's log) that holds one of ``looked_for`` (pure)."""
    return [
        f"{what} in {name}"
        for name, text in texts.items()
        for what, n in looked_for.items()
        if n in text
    ]
