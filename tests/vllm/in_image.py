"""Real vLLM from the built ``vllm-cpu`` image, under podman, as the operator's CPU model pod runs it.

The pod is the one the operator renders for the tiny model's ModelDeployment
(``model.uri: pvc://models/<model>``): the ``tiny-model`` image first copies the model into the
"PVC" (a host directory owned by the pods' user), then the vLLM container runs with its command,
arguments, environment, user, read-only root, dropped capabilities, memory limit and
memory-backed ``/tmp`` and ``/dev/shm`` (``tests/images/podman.py::pod_flags``), on the host
network with vLLM on 127.0.0.1. Needs ``make images``; the images' own helpers come with it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.config import OperatorConfig
from tests.images.podman import Podman, pod_flags


def image_missing() -> str | None:
    """Why the image runner cannot run here, or None."""
    try:
        from paitient_images import NotBuilt, image  # noqa: PLC0415 - comes with `make images`
    except ImportError:
        return "real vLLM: no image builder (paitient_images) in this tree"
    if shutil.which("podman") is None:
        return "real vLLM: podman is not installed (make image-tools)"
    try:
        image("vllm-cpu"), image("tiny-model")
    except NotBuilt as exc:
        return f"real vLLM: {exc}"
    if os.geteuid() != 0:
        return "real vLLM: the image runner uses rootful podman: run as root"
    return None


class ImageRunner:
    """The two images in the session's podman store (loading them takes a few minutes, once per
    session; the image tests share the store); ``scratch`` holds the "PVC"."""

    def __init__(self, podman: Podman, scratch: Path) -> None:
        from paitient_images import image  # noqa: PLC0415

        self.podman = podman
        vllm, tiny = image("vllm-cpu"), image("tiny-model")
        self.vllm_image = self.podman.load(vllm.archive, vllm.reference)
        self.model_image = self.podman.load(tiny.archive, tiny.reference)
        self.home = scratch
        self._models: Path | None = None

    def model_volume(self, config: OperatorConfig) -> Path:
        """The "PVC" the tiny-model image filled, as the delivery Job would (done once)."""
        if self._models is None:
            volume = self.home / "pvc-models"
            _owned(volume, config)
            flags = ["--network", "none", "--read-only", "--cap-drop=ALL"]
            flags += ["--security-opt", "no-new-privileges", "--volume", f"{volume}:/target"]
            done = self.podman.execute(self.model_image, flags, [])
            assert done.returncode == 0, done.stderr[-3000:]
            self._models = volume
        return self._models

    def start(self, name: str, md: ModelDeployment, port: int, state: Path) -> Any:
        """Start the operator's vLLM container for ``md`` on ``port``; returns the container."""

        config = OperatorConfig.model_validate(
            {"vllmPort": port, "encryptedStorageClasses": ["enc"]}
        )
        pod = build_deployment(md, config)["spec"]["template"]["spec"]
        [vllm] = [c for c in pod["containers"] if c["name"] == "vllm"]
        cache = _owned(state / "cache", config)
        volumes = {"model-source": str(self.model_volume(config)), "model-cache": str(cache)}
        flags = pod_flags(pod, vllm, volumes, pod_name=name)
        return self.podman.start(name, self.vllm_image, flags, vllm["args"])

    def python(self, script: str, data: object | None, scratch: Path) -> tuple[int, str, str]:
        """Run ``script`` with the image's Python; ``data`` arrives as JSON in argv[1]'s file."""
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "in.json").write_text(json.dumps(data))
        flags = ["--network", "none", "--read-only", "--cap-drop=ALL", "--entrypoint", "python3"]
        flags += ["--volume", f"{scratch}:/in:ro", "--tmpfs", "/tmp:rw,size=256m"]
        done = self.podman.execute(self.vllm_image, flags, ["-c", script, "/in/in.json"])
        return done.returncode, done.stdout, done.stderr


def _owned(path: Path, config: OperatorConfig) -> Path:
    """A directory the pods' user owns, as fsGroup makes a volume."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, config.run_as_user, config.fs_group)
    return path
