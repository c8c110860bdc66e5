"""Relative links of README.md and docs/*.md: every file and anchor they name exists."""

from __future__ import annotations

from pathlib import Path

from tests.docs.blocks import user_docs
from tests.docs.links import anchors, broken, links, slug


def test_anchors_are_githubs() -> None:
    assert slug("Gateway — `make bench-gateway`") == "gateway--make-bench-gateway"
    assert slug("Where a thing lives, and which way imports go") == (
        "where-a-thing-lives-and-which-way-imports-go"
    )
    assert slug("`ready` means servable") == "ready-means-servable"
    text = '# A\n## Same\n## Same\n```\n# not a heading\n```\n<a id="here"></a>\n'
    assert anchors(text) == {"a", "same", "same-1", "here"}


def test_links_outside_code_are_found() -> None:
    text = (
        "See [tls](tls.md#x) and ![img](pic.png), `[no](code.md)`,\n"
        "```\n[no](block.md)\n```\n[ref]: other.md\n[web](https://example.com)\n"
    )
    assert links(text) == [
        (1, "tls.md#x"), (1, "pic.png"), (5, "other.md"), (6, "https://example.com")
    ]  # fmt: skip


def test_missing_files_and_anchors_are_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# Here\n")
    doc = tmp_path / "doc.md"
    text = "[ok](there.md#here) [gone](missing.md) [bad](there.md#nowhere) [self](#top)\n# Top\n"
    assert broken(doc, text) == [
        "doc.md:1: missing.md (no such file)",
        "doc.md:1: there.md#nowhere (no heading or <a id> 'nowhere' in there.md)",
    ]


def test_no_user_doc_links_to_a_missing_file_or_anchor() -> None:
    read: dict[Path, str] = {}
    found = [p for doc in user_docs() for p in broken(doc, doc.read_text(), read)]
    assert found == []


def test_the_docs_index_lists_every_page() -> None:
    index = user_docs()[0].parent / "docs" / "README.md"
    listed = {target.partition("#")[0] for _, target in links(index.read_text())}
    pages = {p.name for p in index.parent.glob("*.md")} - {"README.md"}
    assert pages - listed == set(), "docs/README.md does not list these pages"
