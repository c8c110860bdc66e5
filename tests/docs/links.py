"""Relative links of the user docs: each must name a file that exists and, with ``#anchor``, a
heading (or an ``<a id>``) of that file, as GitHub renders them (pure, apart from reading)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

INLINE = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\".*\")?\s*$")
HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, …
INLINE_CODE = re.compile(r"`+[^`]*`+")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to
    hyphens (pure)."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = text.lower().replace("`", "")
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def prose(text: str, blank_inline_code: bool = True) -> list[str]:
    """The lines outside fenced code blocks (as empty lines), inline code blanked unless asked
    not to (pure)."""
    kept, fence = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped[len(fence) :].strip():
                fence = ""
            kept.append("")
            continue
        opening = re.match(r"^(```+|~~~+)", stripped)
        if opening:
            fence = opening[1]
            kept.append("")
            continue
        kept.append(INLINE_CODE.sub("``", line) if blank_inline_code else line)
    return kept


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file offers: its headings' slugs (repeats get -1, -2, …) and
    explicit ``<a id=…>`` (pure)."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for line in prose(text, blank_inline_code=False):
        found.update(HTML_ID.findall(line))
        heading = HEADING.match(line)
        if heading:
            base = slug(heading[1])
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every link and image in the prose (pure)."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(prose(text), start=1):
        for pattern in (INLINE, IMAGE, REFERENCE):
            found.extend((number, m) for m in pattern.findall(line))
    return found


def broken(path: Path, text: str, read: dict[Path, str] | None = None) -> list[str]:
    """The relative links of ``path`` to a missing file or anchor, as ``file:line: target``
    (``read``: texts already read, by path)."""
    cache = read if read is not None else {}
    problems = []
    for line, target in links(text):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.name}:{line}: {target}"
        if not file_part:
            cache.setdefault(path, text)
        elif not destination.exists():
            problems.append(f"{where} (no such file)")
            continue
        if anchor and destination.suffix == ".md":
            if destination not in cache:
                cache[destination] = destination.read_text()
            if anchor not in anchors(cache[destination]):
                problems.append(f"{where} (no heading or <a id> {anchor!r} in {destination.name})")
    return problems
