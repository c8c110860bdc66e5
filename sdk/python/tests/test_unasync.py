"""The sync modules are generated from the async ones: the check fails when they drift."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

SDK = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", SDK / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


unasync = _load_script()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the SDK's twins, to edit without touching the real ones."""
    for source, target in unasync.FILES:
        shutil.copy(unasync.PACKAGE / source, tmp_path / source)
        shutil.copy(unasync.PACKAGE / target, tmp_path / target)
    return tmp_path


def test_the_generated_modules_are_up_to_date(package: Path) -> None:
    assert unasync.run(package, check=True) == 0


def test_substitutions_turn_async_tokens_into_sync_ones() -> None:
    used: set[int] = set()
    source = (
        "async def close(self) -> AsyncIterator[int]:\n"
        "    async with self._lock:\n"
        "        await self.response.aclose()\n"
        "    async for line in self.response.aiter_lines():\n"
        "        await asyncio.sleep(1)\n"
        "class _AsyncStream(httpx.AsyncClient): ...\n"
    )
    assert unasync.unasync(source, used) == (
        "def close(self) -> Iterator[int]:\n"
        "    with self._lock:\n"
        "        self.response.close()\n"
        "    for line in self.response.iter_lines():\n"
        "        time.sleep(1)\n"
        "class _Stream(httpx.Client): ...\n"
    )
    # Names that merely contain the tokens stay as they are.
    assert unasync.unasync("awaiting = reader.feed(asyncio_free)\n", set()) == (
        "awaiting = reader.feed(asyncio_free)\n"
    )


def test_a_hand_edit_of_a_generated_module_fails_the_check(
    package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = package / "_client.py"
    client.write_text(client.read_text().replace("attempt += 1", "attempt += 2"))
    assert unasync.run(package, check=True) == 1
    out, err = capsys.readouterr()
    assert "-            attempt += 2" in out
    assert "+            attempt += 1" in out
    assert "_client.py" in err


def test_an_async_edit_without_regenerating_fails_the_check_until_written(
    package: Path,
) -> None:
    source = package / "_async_streaming.py"
    source.write_text(source.read_text().replace("Release the connection", "Free the connection"))
    assert unasync.run(package, check=True) == 1
    assert unasync.run(package, check=False) == 0
    assert "Free the connection" in (package / "_streaming.py").read_text()
    assert unasync.run(package, check=True) == 0


def test_a_substitution_that_matches_nothing_fails(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unasync, "SUBSTITUTIONS", [*unasync.SUBSTITUTIONS, (r"\bnever\b", "x")])
    monkeypatch.setattr(
        unasync, "_COMPILED", [*unasync._COMPILED, (unasync.re.compile(r"\bnever\b"), "x")]
    )
    assert unasync.run(package, check=True) == 1
