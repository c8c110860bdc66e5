"""The docs test's runner: a block runs as in one terminal (what a shell block exports, the next
block sees), a failing block says so, and a JS block leaves no file behind."""

from __future__ import annotations

import os
from pathlib import Path

from tests.docs.blocks import REPO, Block
from tests.docs.runner import run_block


def _block(lang: str, code: str) -> Block:
    return Block(Path("/x/doc.md"), 1, lang, code, None)


def test_blocks_share_one_terminals_environment(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sdk" / "js").mkdir(parents=True)
    (repo / ".venv").symlink_to(REPO / ".venv")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    exported = _block("bash", 'export GREETING="hello docs"\ncd sdk\necho "in $PWD"\n')
    ran, env = run_block(exported, 0, env, tmp_path, repo)
    assert ran.returncode == 0 and ran.output.strip().endswith("/repo/sdk")
    assert env["GREETING"] == "hello docs"
    python = _block("python", 'import os\nprint(os.environ["GREETING"], os.getcwd())\n')
    ran, env = run_block(python, 1, env, tmp_path, repo)
    assert ran.output.strip() == f"hello docs {repo}"  # every block starts in the checkout
    js = _block("js", "console.log(process.env.GREETING, typeof await Promise.resolve(1));\n")
    ran, _ = run_block(js, 2, env, tmp_path, repo)
    assert (ran.returncode, ran.output.strip()) == (0, "hello docs number")
    assert list((repo / "sdk" / "js").iterdir()) == []


def test_a_failing_block_stops_with_its_output_and_keeps_the_environment(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "KEPT": "1"}
    failing = _block("bash", "export LOST=1\necho before\nfalse | cat\necho never\n")
    ran, after = run_block(failing, 0, env, tmp_path, tmp_path)
    assert ran.returncode == 1 and ran.output == "before\n"  # pipefail and -e, as written
    assert after == env
