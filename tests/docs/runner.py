"""Runs one code block of the docs as a user would: shell blocks with bash (the environment a
block leaves is the next one's, as in one terminal), Python with the project's virtualenv, JS with
Node beside the JS SDK's node_modules; always in the checkout."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import REPO, Block

SECONDS = {"bash": 1800, "sh": 600, "python": 900, "js": 300}  # make up may import images


@dataclass
class Ran:
    block: Block
    returncode: int
    output: str  # stdout and stderr, interleaved


def run_block(
    block: Block, number: int, env: dict[str, str], work: Path, repo: Path = REPO
) -> tuple[Ran, dict[str, str]]:
    """Run one block as a user would (bash for shell, the project's Python, Node for JS) in the
    checkout; for shell blocks, the environment it leaves is the next block's."""
    env_file = work / f"env-{number}"
    if block.lang in ("bash", "sh"):
        script = f"set -eo pipefail\n{block.code}\nenv -0 > '{env_file}'\n"
        argv = ["bash", "-c", script]
    elif block.lang == "python":
        source = work / f"block-{number}.py"
        source.write_text(block.code)
        argv = [str(repo / ".venv" / "bin" / "python"), str(source)]
    else:  # js: beside sdk/js's node_modules, where the `openai` package is installed
        source = repo / "sdk" / "js" / f".docs-test-block-{number}.mjs"
        source.write_text(block.code)
        argv = ["node", str(source)]
    try:
        done = subprocess.run(
            argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=SECONDS[block.lang], check=False,
        )  # fmt: skip
    finally:
        if block.lang == "js":
            source.unlink(missing_ok=True)
    after = dict(env)
    if done.returncode == 0 and env_file.exists():
        pairs = (e.partition("=") for e in env_file.read_text().split("\0") if "=" in e)
        after = {k: v for k, _, v in pairs}
    return Ran(block, done.returncode, done.stdout), after
