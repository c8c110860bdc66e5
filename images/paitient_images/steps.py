"""Progress lines and failures of the build: one line per step, and an error naming the step and
what to do about it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class BuildError(RuntimeError):
    """A build step failed; the message says which step and what to do."""


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(name: str, hint: str = "") -> Iterator[None]:
    """Log ``name`` with its duration; turn any failure into a BuildError naming it."""
    started = time.monotonic()
    log(f"{name} ...")
    try:
        yield
    except BuildError:
        raise
    except Exception as exc:
        advice = f"\n  what to do: {hint}" if hint else ""
        raise BuildError(f"step '{name}' failed: {exc}{advice}") from exc
    log(f"{name}: done in {time.monotonic() - started:.1f} s")


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> str:
    """Run a command; its output goes to ``log_file`` when given. A failure raises with the
    command's last lines (and the log's path), so the step's error says what went wrong."""
    cmd = [str(a) for a in args]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("w", encoding="utf-8") as out:
            code = subprocess.run(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        output = log_file.read_text(encoding="utf-8", errors="replace")
    else:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        code, output = done.returncode, done.stdout + done.stderr
    if code != 0:
        tail = "\n    ".join(output.strip().splitlines()[-15:])
        where = f" (full log: {log_file})" if log_file else ""
        raise BuildError(f"`{' '.join(cmd[:6])} …` exited {code}{where}:\n    {tail}")
    return output
