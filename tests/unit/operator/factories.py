"""Chainable test builders for ModelDeployments: ``make_md("a").gpus(2).product("X").obj()``.

Pure Python (no cluster), so unit and integration tests share them: ``.obj()`` is the typed
model the builders take, ``.manifest()`` the dict to send to an API server, ``.body()`` what an
API server (or kopf) hands back.
"""

from __future__ import annotations

import copy
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment

DEFAULT_NAMESPACE = "tenant-demo"
DEFAULT_MODEL = "ZimaBlueAI/HuatuoGPT-o1-8B"


class MDFactory:
    """A ModelDeployment under construction; every method returns the factory."""

    def __init__(self, name: str) -> None:
        self._meta: dict[str, Any] = {"name": name, "namespace": DEFAULT_NAMESPACE}
        self._spec: dict[str, Any] = {"model": {"name": DEFAULT_MODEL}}

    # --- metadata -------------------------------------------------------------------------
    def namespace(self, namespace: str) -> MDFactory:
        self._meta["namespace"] = namespace
        return self

    def generation(self, generation: int) -> MDFactory:
        self._meta["generation"] = generation
        return self

    def uid(self, uid: str) -> MDFactory:
        self._meta["uid"] = uid
        return self

    # --- model source ---------------------------------------------------------------------
    def model(self, name: str, revision: str | None = None) -> MDFactory:
        self._spec["model"] = {"name": name}
        if revision is not None:
            self._spec["model"]["revision"] = revision
        return self

    def uri(self, uri: str) -> MDFactory:
        self._spec["model"] = {"uri": uri}
        return self

    def token_secret(self, name: str, key: str = "token") -> MDFactory:
        self._spec["model"]["tokenSecretRef"] = {"name": name, "key": key}
        return self

    # --- hardware -------------------------------------------------------------------------
    def replicas(self, replicas: int) -> MDFactory:
        self._spec["replicas"] = replicas
        return self

    def autoscaling(self, max_replicas: int, min_replicas: int = 1, **more: Any) -> MDFactory:
        """``spec.autoscaling`` (camelCase keys in ``more``: target, scaleDownDelay, ...)."""
        self._spec["autoscaling"] = {
            "maxReplicas": max_replicas, "minReplicas": min_replicas, **more
        }  # fmt: skip
        return self

    def gpus(self, count: int) -> MDFactory:
        self._spec["useGpu"] = True
        self._spec.setdefault("gpu", {})["count"] = count
        return self

    def product(self, product: str) -> MDFactory:
        self._spec["useGpu"] = True
        self._spec.setdefault("gpu", {})["product"] = product
        return self

    def cpu_only(self) -> MDFactory:
        """CPU build of vLLM; drops any GPU settings made earlier in the chain."""
        self._spec["useGpu"] = False
        self._spec.pop("gpu", None)
        return self

    def resources(self, cpu: str | None = None, memory: str | None = None) -> MDFactory:
        res = self._spec.setdefault("resources", {})
        if cpu is not None:
            res["cpu"] = cpu
        if memory is not None:
            res["memory"] = memory
        return self

    # --- runtime --------------------------------------------------------------------------
    def _runtime(self) -> dict[str, Any]:
        runtime: dict[str, Any] = self._spec.setdefault("runtime", {})
        return runtime

    def image(self, image: str) -> MDFactory:
        self._runtime()["image"] = image
        return self

    def max_model_len(self, length: int) -> MDFactory:
        self._runtime()["maxModelLen"] = length
        return self

    def gpu_memory_utilization(self, fraction: float) -> MDFactory:
        self._runtime()["gpuMemoryUtilization"] = fraction
        return self

    def cpu_kv_cache_space(self, quantity: str) -> MDFactory:
        self._runtime()["cpuKvCacheSpace"] = quantity
        return self

    def dtype(self, dtype: str) -> MDFactory:
        self._runtime()["dtype"] = dtype
        return self

    def quantization(self, method: str) -> MDFactory:
        self._runtime()["quantization"] = method
        return self

    def extra_args(self, *args: str) -> MDFactory:
        self._runtime()["extraArgs"] = list(args)
        return self

    # --- storage, access, limits ----------------------------------------------------------
    def storage(self, size: str | None = None, storage_class: str | None = None) -> MDFactory:
        storage = self._spec.setdefault("storage", {})
        if size is not None:
            storage["size"] = size
        if storage_class is not None:
            storage["storageClassName"] = storage_class
        return self

    def allow(self, *namespaces: str) -> MDFactory:
        self._spec["access"] = {"allowedNamespaces": list(namespaces)}
        return self

    def rate_limits(self, rpm: int | None = None, tpm: int | None = None) -> MDFactory:
        limits: dict[str, int] = {}
        if rpm is not None:
            limits["requestsPerMinute"] = rpm
        if tpm is not None:
            limits["tokensPerMinute"] = tpm
        self._spec["rateLimits"] = limits
        return self

    def routing(self, **fields: Any) -> MDFactory:
        """``spec.routing`` (camelCase names: strategy, prefixLength, loadBound)."""
        self._spec["routing"] = dict(fields)
        return self

    # --- results --------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The object to create: apiVersion, kind, metadata, spec (camelCase, only what was set)."""
        return {
            "apiVersion": "paitient.ai/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": copy.deepcopy(self._meta),
            "spec": copy.deepcopy(self._spec),
        }

    def body(self) -> dict[str, Any]:
        """The object as an API server returns it: defaults filled, generation and uid set."""
        body = self.obj().to_wire()
        body["metadata"].setdefault("generation", 1)
        body["metadata"].setdefault("uid", f"uid-{self._meta['name']}")
        return body

    def obj(self) -> ModelDeployment:
        """The typed ModelDeployment the builders take (validated: a bad chain fails here)."""
        return ModelDeployment.model_validate(self.manifest())


def make_md(name: str = "md-a") -> MDFactory:
    """A valid GPU ModelDeployment named ``name`` in ``tenant-demo``, ready to be refined."""
    return MDFactory(name)
