"""The code blocks of the user docs (README.md, docs/*.md) and what the docs test does with each:
run it against `make up`'s stack, or leave it because a marker right above it says why (pure,
apart from reading the files)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Blocks in these languages are commands or programs a user runs: each runs, or is marked.
RUNNABLE = frozenset({"bash", "sh", "python", "js"})
# Diagrams (no language), request and answer shapes, configuration fragments: not commands.
ILLUSTRATIONS = frozenset({"", "text", "json", "yaml"})
# `<!-- docs-test: not run: <why> -->` on the line above a block: it runs elsewhere (a GPU
# cluster, a registry of your own), or is a synopsis rather than a command.
MARKER = re.compile(r"^<!--\s*docs-test:\s*not run:\s*(?P<why>\S.*?)\s*-->$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a document."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None  # the marker's reason, when it has one

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.not_run is None


def parse_blocks(path: Path, text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the marker right above it (blank lines
    between the two are allowed)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        end = next(
            (j for j in range(index + 1, len(lines)) if lines[j].startswith(fence)
             and not lines[j][len(fence):].strip()),
            None,
        )  # fmt: skip
        if end is None:
            raise ValueError(f"{path}:{index + 1}: a code block that never closes")
        above = next((lines[j].strip() for j in range(index - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(above)
        blocks.append(
            Block(path, index + 1, opening["lang"].lower(), "\n".join(lines[index + 1 : end]) + "\n",
                  marker["why"] if marker else None)
        )  # fmt: skip
        index = end + 1
    return blocks


def problems(blocks: list[Block]) -> list[str]:
    """Blocks the docs test can neither run nor leave: an unknown language, or a marker on a
    block that is no command (pure)."""
    found = []
    for block in blocks:
        if block.lang not in RUNNABLE | ILLUSTRATIONS:
            found.append(
                f"{block.where}: a ```{block.lang} block: write it as one of "
                f"{sorted(RUNNABLE)} (run by the docs test) or {sorted(ILLUSTRATIONS - {''})}"
            )
        elif block.lang in ILLUSTRATIONS and block.not_run is not None:
            found.append(
                f"{block.where}: a not-run marker on a ```{block.lang} block, which never runs"
            )
    return found


def user_docs(repo: Path = REPO) -> list[Path]:
    """The documents a user reads, README first: the docs test runs them in this order (the
    README's walk-through makes the tenant, key and deployment the others use)."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def all_blocks(repo: Path = REPO) -> list[Block]:
    return [b for path in user_docs(repo) for b in parse_blocks(path, path.read_text())]
