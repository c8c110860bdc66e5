"""The docs' code blocks: found with their not-run markers, and every block of README.md and
docs/*.md is a command the docs test runs, a marked one, or an illustration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import all_blocks, parse_blocks, problems

DOC = """\
# Title

```bash
make up
```

<!-- docs-test: not run: a real GPU cluster -->

```python
print("on a GPU")
```

````md
```bash
inside a longer fence
```
````

```json
{"a": 1}
```
<!-- docs-test: not run: no command -->
```yaml
a: 1
```
"""


def test_blocks_are_found_with_their_markers() -> None:
    blocks = parse_blocks(Path("/x/doc.md"), DOC)
    assert [(b.line, b.lang, b.not_run) for b in blocks] == [
        (3, "bash", None),
        (9, "python", "a real GPU cluster"),
        (13, "md", None),
        (19, "json", None),
        (23, "yaml", "no command"),
    ]
    assert blocks[0].code == "make up\n" and blocks[0].runs
    assert not blocks[1].runs  # marked
    assert "inside a longer fence" in blocks[2].code


def test_unknown_languages_and_markers_on_illustrations_are_problems() -> None:
    found = problems(parse_blocks(Path("/x/doc.md"), DOC))
    assert len(found) == 2
    assert "doc.md:13: a ```md block" in found[0]
    assert "doc.md:23: a not-run marker on a ```yaml block" in found[1]


def test_a_block_that_never_closes_is_an_error() -> None:
    with pytest.raises(ValueError, match="never closes"):
        parse_blocks(Path("/x/doc.md"), "```bash\nmake up\n")


def test_every_block_of_the_user_docs_is_run_marked_or_an_illustration() -> None:
    blocks = all_blocks()
    assert problems(blocks) == []
    # The README's walk-through runs (tests/integration/test_docs_run.py), and every marker
    # says why its block does not.
    readme = [b for b in blocks if b.path.name == "README.md"]
    assert sum(b.runs for b in readme) >= 2
    assert all(len(b.not_run) > 5 for b in blocks if b.not_run is not None)
