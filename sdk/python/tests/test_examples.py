"""The API reference's Python examples, and every example in the README, run as written
against an emulation of the REST contract reached through PAITIENT_BASE_URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from paitient_secure_model import _async_client, _client

from .fakeserver import BASE_URL, FakeServer
from .seed_examples import SEED_EXAMPLES

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """The emulated service, reached by clients built with no arguments but the seed's."""
    server = FakeServer(auto_progress=True)
    monkeypatch.setenv("PAITIENT_BASE_URL", BASE_URL)
    monkeypatch.setattr(
        _client,
        "_new_http_client",
        lambda timeout, verify: httpx.Client(transport=server.transport(), timeout=timeout),
    )
    monkeypatch.setattr(
        _async_client,
        "_new_http_client",
        lambda timeout, verify: httpx.AsyncClient(transport=server.transport(), timeout=timeout),
    )
    return server


def run_snippets(snippets: list[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__example__"}
    for snippet in snippets:
        exec(compile(snippet, "<example>", "exec"), namespace)
    return namespace


def test_seed_examples(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_snippets(SEED_EXAMPLES)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "HIPAA compliance protects patients.",
        "Tier: standard",
        "Usage: 1234/10000000",
        "Authentication error: invalid API key or client ID",
    ]
    assert namespace["deployment"].id == "my-secure-model"
    assert namespace["status"].id == "my-secure-model"
    create, status = server.requests[0], server.requests[1]
    assert (create.method, str(create.url)) == ("POST", f"{BASE_URL}/deployments")
    assert (status.method, str(status.url)) == (
        "GET",
        f"{BASE_URL}/deployments/my-secure-model/status",
    )
    assert server.requests[-1].headers["authorization"] == "Bearer invalid-key"


def test_seed_validation_branch(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.credentials["invalid-key"] = "invalid-id"  # now accepted: deploy fails validation
    server.add_deployment("huatuogpt-o1-8b-x1y2z")
    run_snippets(SEED_EXAMPLES[-1:])
    # 409 is no ValidationError
    assert capsys.readouterr().out == "Other error: a deployment with this name already exists\n"

    server.deployments.clear()
    original = server.handle
    server.handle = lambda r: httpx.Response(  # type: ignore[method-assign]
        422, json={"error": {"type": "validation_error", "message": "bad model"}}
    )
    run_snippets(SEED_EXAMPLES[-1:])
    assert capsys.readouterr().out == "Validation error: bad model\n"
    server.handle = original  # type: ignore[method-assign]


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _normalise(code: str) -> list[str]:
    return [line.strip() for line in code.splitlines() if line.strip()]


def test_readme_quickstart_is_the_seed() -> None:
    blocks = [_normalise(b) for b in readme_blocks()]
    for seed in SEED_EXAMPLES:
        lines = [line for line in _normalise(seed) if line != "# Python example"]
        assert lines in blocks, lines[0]


def test_readme_examples_run(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAITIENT_API_KEY", "your-api-key")
    monkeypatch.setenv("PAITIENT_CLIENT_ID", "your-client-id")
    monkeypatch.setattr(_client.time, "sleep", lambda seconds: None)

    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(_async_client.asyncio, "sleep", no_sleep)
    run_snippets(readme_blocks())
    out = capsys.readouterr().out
    assert "Authentication error: invalid API key or client ID" in out
    assert "triage-assistant: ready 1/1" in out
    assert "HIPAA compliance protects patients.\n[stop, 16 tokens]" in out
    assert "Protected health information. stop 12" in out
    assert "Protected health information.\n[stop, 12 tokens]" in out
    assert "triage-assistant" not in server.deployments  # deleted by the example
