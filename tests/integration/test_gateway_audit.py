"""The audit trail: one line per request with the fields it promises, and never any content.

Marker strings are planted in prompts (the stand-in echoes them into completions), in a
planted wrong key and in the real keys; nothing the gateway process wrote (stdout, stderr: its
audit lines and every other log line) may contain any of them. (The stand-in's own output is
not the gateway's: vLLM's logs are vLLM's.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.standins.client import sync_call
from tests.standins.processes import start_gateway, start_standin, write_keys_file

PROMPT_MARK = "PROMPTMARKER7731"
SECOND_MARK = "COMPLETIONMARKER4410"
KEY_MARK = "psk_keymarkerabc_" + "K" * 43
FIELDS = {
    "time",
    "request_id",
    "tenant",
    "client_id",
    "key_id",
    "deployment",
    "route",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
}


def test_no_log_line_holds_a_prompt_completion_or_key(tmp_path: Path) -> None:
    standin = start_standin(tmp_path)
    gateway = None
    try:
        callers = write_keys_file(
            tmp_path / "keys.json",
            [{"name": "acme", "clientId": "acme-app", "namespace": "tenant-acme"}],
        )
        gateway = start_gateway(tmp_path, tmp_path / "keys.json", tmp_path / "ledger", standin.url)
        acme = callers["acme"]
        prompt = f"please summarise {PROMPT_MARK} and {SECOND_MARK} for the patient"
        url = f"{gateway.url}/v1"
        sessions = [
            ("POST", "/completions", {"prompt": prompt, "max_tokens": 8}, acme.headers()),
            (
                "POST",
                "/completions",
                {"prompt": prompt, "max_tokens": 8, "stream": True},
                acme.headers(),
            ),
            (
                "POST",
                "/chat/completions",
                {"messages": [{"role": "user", "content": prompt}], "stream": True},
                acme.headers(),
            ),
            (
                "POST",
                "/completions",
                {"prompt": prompt},
                {"Authorization": f"Bearer {KEY_MARK}", "X-Client-ID": "acme-app"},
            ),
            ("POST", "/completions", {"prompt": prompt, "max_tokens": "bad"}, acme.headers()),
            ("POST", "/tokenize", {"prompt": prompt}, acme.headers()),
        ]
        answers = [sync_call(m, url + p, b, headers=h) for m, p, b, h in sessions]
        assert [a.status for a in answers] == [200, 200, 200, 401, 400, 404]
        assert PROMPT_MARK in answers[0].body.decode()  # the completion really echoed it
    finally:
        if gateway is not None:
            gateway.stop()
        standin.stop()

    assert gateway is not None
    output = gateway.output()
    assert output.count('"request_id"') == len(sessions)  # what is scanned holds the audit
    secret = acme.key.rsplit("_", 1)[1]
    for mark in (PROMPT_MARK, SECOND_MARK, KEY_MARK, "keymarkerabc", acme.key, secret):
        assert mark not in output, mark
    audit = [json.loads(line) for line in gateway.stdout.read_text().splitlines() if line]
    assert len(audit) == len(sessions)
    assert all(set(line) >= FIELDS for line in audit)
    assert [line["status"] for line in audit] == [200, 200, 200, 401, 400, 404]
    first = audit[0]
    assert (first["tenant"], first["client_id"], first["deployment"]) == (
        "acme",
        "acme-app",
        "demo",
    )
    assert first["key_id"] == acme.key.split("_")[1]
    assert first["completion_tokens"] == 8 and first["prompt_tokens"] == len(prompt.split())
