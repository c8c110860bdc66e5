"""The build: every step's inputs hashed into a key, every output cached under that key, so a
rebuild with nothing changed only reads keys and finds the archives.

Steps, bottom up: a layer's files (a tree in ``work/``), its blob (``layers/``), the image's
archive and SBOM (``archives/``), recorded in ``index.json``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Final

from paitient_images import debian, layer, oci, pause, pythonenv, sbom, tinymodel
from paitient_images.cache import (
    ImageArtifact,
    TinyModel,
    cache_dir,
    forget_missing,
    key_of,
    record_image,
    record_model,
)
from paitient_images.layer import LayerBlob
from paitient_images.recipes import (
    DEBIAN_BASES,
    DEBIAN_MIRRORS,
    KUBERNETES_MODULE,
    PAUSE_VERSION,
    PYTHON_ENVS,
    REPO_ROOT,
    VLLM_ENV,
    Compression,
    ImageRecipe,
    Layer,
    recipes,
)
from paitient_images.steps import BuildError, log, step

_PACKAGE_DIR: Final = Path(__file__).parent
# The folders of this repository's wheel that the component images run (see pythonenv.py).
PROJECT_SOURCES: Final = ("common", "operator", "inference", "cli", "frontdoor")
# Layer blobs this big are dropped once their archive holds them: the archive is what is used.
KEEP_BLOB_LIMIT: Final = 1 << 30
# A prune spares entries younger than this: another checkout's build may have made them for its
# own commit and be using them in a test session right now.
PRUNE_GRACE_S: Final = 6 * 3600
_DIRS: Final = ("work", "layers", "archives", "models", "logs")


def _code(*modules: str) -> str:
    """Digest of builder modules: changing how a step works changes its key."""
    h = hashlib.sha256()
    for name in modules:
        h.update((_PACKAGE_DIR / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def _text(path: Path) -> str:
    if not path.is_file():
        raise BuildError(f"{path} is missing: run `python -m paitient_images lock` and commit it")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_source_digest() -> str:
    files = [REPO_ROOT / "pyproject.toml", REPO_ROOT / "README.md"]
    for folder in PROJECT_SOURCES:
        files += [
            p
            for p in (REPO_ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
        ]
    return pythonenv.file_digest(files)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def repository_revision() -> tuple[str, str | None]:
    """(commit, commit time) of this checkout; ``-dirty`` when the packaged sources changed."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", *PROJECT_SOURCES, "pyproject.toml"):
        commit += "-dirty"
    return commit, _git("log", "-1", "--format=%cI", "HEAD") or None


class Builder:
    """Builds images into the cache; every method returns the cached result when it exists."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir()
        for name in _DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.revision, self.created = repository_revision()
        self._trees: dict[str, tuple[Path, str]] = {}
        self._syft: sbom.SyftBuild | None = None
        self.used: set[Path] = set()

    # -- keys -------------------------------------------------------------------------------

    def tree_key(self, spec: Layer) -> str:
        if spec.kind == "debian":
            base = DEBIAN_BASES[spec.source]
            inputs: object = [
                dataclasses.asdict(base),
                DEBIAN_MIRRORS,
                _text(base.lock),
                _code("debian", "debian_pins", "pythonenv"),
            ]
        elif spec.kind == "wheels":
            env = PYTHON_ENVS[spec.source]
            inputs = [dataclasses.asdict(env), _text(env.lock), _code("pythonenv")]
        elif spec.kind == "project":
            inputs = [project_source_digest(), _code("pythonenv")]
        elif spec.kind == "pause":
            inputs = [KUBERNETES_MODULE, PAUSE_VERSION, _code("pause")]
        else:
            inputs = [self.model_key(), _code("tinymodel", "copy_model")]
        return key_of([spec.kind, spec.source, inputs])

    def model_key(self) -> str:
        vllm_tree = self.tree_key(Layer("wheels", VLLM_ENV.name))
        return key_of(["model", vllm_tree, _code("tinymodel", "tinymodel_make")])

    def layer_key(self, spec: Layer, compression: Compression) -> str:
        return key_of([self.tree_key(spec), compression, _code("layer")])

    def image_key(self, recipe: ImageRecipe) -> str:
        layers = [self.layer_key(s, recipe.compression) for s in recipe.layers]
        revision, created = self._revision_of(recipe)
        return key_of([dataclasses.asdict(recipe), layers, revision, created, _code("oci")])

    def _revision_of(self, recipe: ImageRecipe) -> tuple[str, str | None]:
        if recipe.revision is not None:
            return recipe.revision, None
        return self.revision, self.created

    # -- steps ------------------------------------------------------------------------------

    def tree_path(self, spec: Layer) -> Path:
        key = self.tree_key(spec)
        name = f"{spec.kind}-{spec.source}-{key}" if spec.source else f"{spec.kind}-{key}"
        return self.root / "work" / name

    def blob_paths(self, spec: Layer, compression: Compression) -> tuple[Path, Path]:
        """The layer blob and its descriptor fields."""
        key = self.layer_key(spec, compression)
        suffix = "tar.gz" if compression == "gzip" else "tar.zst"
        return self.root / "layers" / f"{key}.{suffix}", self.root / "layers" / f"{key}.json"

    def model_path(self) -> Path:
        return self.root / "models" / f"{tinymodel.MODEL_NAME}-{self.model_key()}"

    def keep(self, recipe: ImageRecipe) -> None:
        """Mark what ``recipe``'s layers are made of as current, built or not, so a prune
        keeps it for the next rebuild (after a commit, only the archives change)."""
        for spec in recipe.layers:
            self.used.update((self.tree_path(spec), *self.blob_paths(spec, recipe.compression)))
            if spec.kind == "tiny-model":
                self.used.update(
                    (self.model_path(), self.tree_path(Layer("wheels", VLLM_ENV.name)))
                )

    def tree(self, spec: Layer) -> Path:
        """The directory of files a layer is made of."""
        path = self.tree_path(spec)
        self.used.add(path)
        if (path / ".complete").is_file():
            return path
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if spec.kind == "debian":
            base = DEBIAN_BASES[spec.source]
            with step(
                f"Debian {base.name} root filesystem (mmdebstrap)",
                "check that deb.debian.org is reachable; the cache's logs/ has apt's and "
                "mmdebstrap's output; if the lock's package set is wrong, run "
                "`python -m paitient_images lock` and commit images/locks/",
            ):
                debian.build_rootfs(base, partial, self.logs / f"mmdebstrap-{base.name}.log")
        elif spec.kind == "wheels":
            env = PYTHON_ENVS[spec.source]
            with step(
                f"Python packages of {env.name} (uv, from {env.lock.name})",
                "check that PyPI is reachable; the log in the cache's logs/ has uv's output",
            ):
                pythonenv.build_wheels_tree(env, partial, self.logs)
        elif spec.kind == "project":
            with step("this repository's wheel", "`uv build` must succeed in the repository"):
                # setuptools stages the wheel in the checkout's build/lib and never empties it: a
                # module moved or deleted since the last build would ship in the image too.
                shutil.rmtree(REPO_ROOT / "build", ignore_errors=True)
                pythonenv.build_project_tree(partial, self.logs)
        elif spec.kind == "pause":
            with step("pause binary (gcc -static)", "run scripts/install-image-tools.sh"):
                pause.build_pause_tree(pause.pause_source(), partial)
        else:
            model = self.model()
            with step("tiny-model image files"):
                tinymodel.build_model_image_tree(Path(model.path), partial)
        (partial / ".complete").touch()
        partial.rename(path)
        return path

    def model(self) -> TinyModel:
        """The tiny model's directory, made with the vLLM environment."""
        key = self.model_key()
        path = self.model_path()
        self.used.add(path)
        if not path.is_dir():
            vllm_tree = self.tree(Layer("wheels", VLLM_ENV.name))
            with step("tiny model (random Llama weights, BPE tokenizer; nothing downloaded)"):
                tinymodel.make_model(vllm_tree, path, self.logs)
        found = TinyModel(
            path=str(path),
            served_name=tinymodel.MODEL_NAME,
            max_model_len=tinymodel.MAX_MODEL_LEN,
            key=key,
        )
        record_model("tiny-model", found)
        return found

    def bench_model(self) -> Path:
        """The bigger model ``make bench-routing`` serves (``tinymodel_make``'s ``bench``
        recipe: the same tokenizer, more layers, a longer context), made with the vLLM
        environment on first use and kept beside the tiny model; one maker at a time."""
        path = self.root / "models" / f"bench-llama-{self.model_key()}"
        with (self.root / ".lock").open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            if not path.is_dir():
                vllm_tree = self.tree(Layer("wheels", VLLM_ENV.name))
                with step("bench model (random Llama weights, the tiny model's tokenizer)"):
                    tinymodel.make_model(vllm_tree, path, self.logs, "bench")
        return path

    def blob(self, spec: Layer, compression: Compression) -> LayerBlob:
        path, meta = self.blob_paths(spec, compression)
        self.used.update((path, meta))
        if path.is_file() and meta.is_file():
            fields = json.loads(meta.read_text(encoding="utf-8"))
            return LayerBlob(**{**fields, "path": path})
        tree = self.tree(spec)
        with step(f"layer {spec.kind} {spec.source} ({compression})".replace("  ", " ")):
            blob = layer.write_layer(tree, path, compression)
        fields = {k: v for k, v in dataclasses.asdict(blob).items() if k != "path"}
        meta.write_text(json.dumps(fields, sort_keys=True), encoding="utf-8")
        return blob

    def _start_syft(self) -> sbom.SyftBuild:
        if self._syft is None:
            self._syft = sbom.SyftBuild(self.root / "tools", self.logs / "syft-build.log")
            if self._syft.building:
                log(f"building syft {sbom.SYFT_VERSION} in the background (once per version)")
        return self._syft

    def syft(self) -> Path:
        return self._start_syft().wait()

    def image(self, recipe: ImageRecipe) -> ImageArtifact:
        key = self.image_key(recipe)
        base = f"{recipe.name}-{recipe.tag}-{key}"
        archive = self.root / "archives" / f"{base}.oci.tar"
        spdx = self.root / "archives" / f"{base}.spdx.json"
        digest_file = self.root / "archives" / f"{base}.digest"
        self.used.update((archive, spdx, digest_file))
        self.keep(recipe)
        if not (archive.is_file() and spdx.is_file() and digest_file.is_file()):
            self._build_archive(recipe, archive, spdx, digest_file)
        artifact = ImageArtifact(
            name=recipe.name,
            reference=recipe.reference,
            archive=str(archive),
            sbom=str(spdx),
            manifest_digest=digest_file.read_text(encoding="utf-8").strip(),
            size=archive.stat().st_size,
            key=key,
        )
        record_image(artifact)
        return artifact

    def _build_archive(
        self, recipe: ImageRecipe, archive: Path, spdx: Path, digest_file: Path
    ) -> None:
        blobs = [self.blob(spec, recipe.compression) for spec in recipe.layers]
        revision, created = self._revision_of(recipe)
        docs = oci.documents(recipe, blobs, version=recipe.tag, revision=revision, created=created)
        with step(f"{recipe.name}: oci-archive {recipe.reference}"):
            oci.write_archive(archive, docs, blobs)
        tmp = self.root / "tmp"
        layout = tmp / f"layout-{recipe.name}"
        shutil.rmtree(layout, ignore_errors=True)
        try:
            with step(
                f"{recipe.name}: SBOM (syft {sbom.SYFT_VERSION})", "see tmp/syft.log in the cache"
            ):
                oci.write_layout(layout, docs, blobs)
                sbom.write_sbom(self.syft(), layout, recipe.reference, recipe.tag, spdx, tmp)
        finally:
            shutil.rmtree(layout, ignore_errors=True)
        digest_file.write_text(docs.manifest_digest + "\n", encoding="utf-8")
        for blob in blobs:
            if blob.size > KEEP_BLOB_LIMIT:
                blob.path.unlink(missing_ok=True)  # the archive holds it; rebuilt if ever needed

    def build(self, names: list[str], *, prune: bool = False) -> list[ImageArtifact]:
        """Build ``names`` (every image when empty), in recipe order, then ``prune`` if asked;
        one build at a time per cache (a second waits for the first, then finds its results).
        The prune runs under the same lock: it deletes the cache's ``tmp``, which a concurrent
        build of another checkout would be writing to."""
        with (self.root / ".lock").open("w") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"another build holds {self.root / '.lock'}; waiting for it")
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            built = self._build(names)
            if prune:
                self.prune()
            return built

    def _build(self, names: list[str]) -> list[ImageArtifact]:
        every = recipes()
        unknown = [n for n in names if n not in every]
        if unknown:
            raise BuildError(f"unknown image(s) {', '.join(unknown)}; known: {', '.join(every)}")
        wanted = [r for n, r in every.items() if not names or n in names]
        self._start_syft()  # a first build compiles it while the packages download
        built = []
        for recipe in wanted:
            built.append(self.image(recipe))
            log(f"{recipe.name}: {recipe.reference} ({built[-1].size / 1e6:.0f} MB)")
        if "tiny-model" in {r.name for r in wanted}:
            self.model()
        return built

    def prune(self, now: float | None = None) -> None:
        """Delete what no current key names (after a build of every image), except what was
        made in the last ``PRUNE_GRACE_S``: another checkout of this repository on the machine
        (another commit, so other component keys) may be about to use it."""
        cutoff = (time.time() if now is None else now) - PRUNE_GRACE_S
        for name in ("work", "layers", "archives", "models"):
            for entry in (self.root / name).iterdir():
                if entry not in self.used and entry.lstat().st_mtime < cutoff:
                    shutil.rmtree(
                        entry
                    ) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        shutil.rmtree(self.root / "tmp", ignore_errors=True)
        if forgotten := forget_missing():
            log(f"pruned from the index (archives gone): {', '.join(forgotten)}")

    def close(self) -> None:
        if self._syft is not None:
            self._syft.cancel()  # only still running when the build failed


def build_images(names: list[str]) -> list[ImageArtifact]:
    builder = Builder()
    try:
        return builder.build(names, prune=not names)
    finally:
        builder.close()


def lock(python_only: bool = False) -> None:
    """Resolve the Python locks and the Debian package pins again (what Debian serves today);
    ``python_only``: the Python locks alone (a new dependency need not move a Debian pin)."""
    root = cache_dir() / "tmp" / "lock"
    for env in PYTHON_ENVS.values():
        with step(f"lock {env.lock.name} (uv pip compile)"):
            pythonenv.write_lock(env, root / env.name)
    if python_only:
        return
    for base in DEBIAN_BASES.values():
        target = root / f"debian-{base.name}"
        shutil.rmtree(target, ignore_errors=True)
        base.lock.unlink(missing_ok=True)
        with step(f"lock {base.lock.name} (mmdebstrap)"):
            text = debian.build_rootfs(base, target, root / f"mmdebstrap-{base.name}.log")
        base.lock.write_text(text, encoding="utf-8")
        shutil.rmtree(target)
