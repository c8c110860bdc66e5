"""What a client sends a gateway besides its body, and what of it may reach vLLM: nothing.

``client_headers`` is a request with every kind of header a client, a browser or a proxy adds,
each value marked; ``leaks`` lists what of it arrived at vLLM. The gateway builds its upstream
request itself: only the headers its own HTTP client sets may arrive, with values of their own.
The same check serves the stand-in (which records what it receives) and real vLLM on the real
node (its port's traffic captured inside the pod).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

# What the gateway's own client (aiohttp) puts on its upstream request; nothing else may arrive.
GATEWAYS_OWN = frozenset(
    {"host", "content-type", "content-length", "accept", "accept-encoding", "user-agent"}
)


def client_headers(key: str, client_id: str) -> dict[str, str]:
    """Credentials plus every other header a caller or a proxy on the way may add, each value
    carrying a marker of its own."""
    mark = f"client-marker-{uuid.uuid4().hex[:12]}"
    return {
        "Authorization": f"Bearer {key}",
        "X-Client-ID": client_id,
        "Cookie": f"session={mark}-cookie",
        "Proxy-Authorization": f"Basic {mark}-proxy",
        "X-Api-Key": f"{mark}-api-key",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Host": f"{mark}.example",
        "X-Real-IP": "203.0.113.8",
        "Forwarded": f"for=203.0.113.9;host={mark}.example",
        "Traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        "X-Request-ID": f"{mark}-request-id",
        "User-Agent": f"{mark}-agent/1.0",
        "Accept-Language": f"en-{mark[-4:]}",
        "Origin": f"https://{mark}.example",
        "Referer": f"https://{mark}.example/page",
        "X-Paitient-Tenant": f"{mark}-tenant",
        "X-Custom-Header": f"{mark}-custom",
    }


def leaks(received: Iterable[tuple[str, str]], sent: dict[str, str]) -> list[str]:
    """The name of each header that reached vLLM and is not the gateway's own, and of each of
    the gateway's own that carries a value the client sent (pure; names only: a value may be a
    key). Empty: nothing of the client's arrived."""
    # Each value whole, and its last word (the key of "Bearer <key>").
    values = {part for v in sent.values() for part in (v, v.split()[-1]) if len(part) >= 6}
    found = []
    for name, value in received:
        if name.lower() not in GATEWAYS_OWN:
            found.append(name)
        elif any(v in value for v in values):
            found.append(f"{name} (with the client's value)")
    return found
