"""The JavaScript SDK driven from Python tests: one ``node`` process running
``sdk_js_calls.js``, asked one call at a time."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class JsSdk:
    """``call(op, **fields)`` returns the script's answer (``ok``, and ``error`` when not ok)."""

    def __init__(self, base_url: str) -> None:
        self.proc = subprocess.Popen(
            ["node", str(HERE / "sdk_js_calls.js")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PAITIENT_BASE_URL": base_url},
        )  # fmt: skip

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JavaScript caller exited ({self.proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> JsSdk:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
