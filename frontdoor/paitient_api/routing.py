"""Where ``generate`` goes: the deployment's gateway Service (in a cluster), or a configured URL
(local runs), as a template over the deployment's name and namespace (pure)."""

from __future__ import annotations

from dataclasses import dataclass

IN_CLUSTER = "http://{name}.{namespace}.svc:8443"


@dataclass(frozen=True)
class GatewayRoute:
    """``template`` may use ``{name}`` and ``{namespace}``; e.g. ``http://127.0.0.1:18443``
    sends every deployment to one local gateway."""

    template: str = IN_CLUSTER

    def url(self, name: str, namespace: str) -> str:
        return self.template.format(name=name, namespace=namespace).rstrip("/")
