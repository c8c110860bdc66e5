"""The watch stream's line splitter: events split across reads, several in one read, CRLF, a last
line without its newline, and the bound on one event's size."""

from __future__ import annotations

import json

import pytest

from paitient_common.kubeasync import (
    MAX_EVENT_BYTES,
    EventTooLarge,
    LineSplitter,
    WatchEvent,
    parse_watch_lines,
)


def split(chunks: list[bytes], limit: int = MAX_EVENT_BYTES) -> list[bytes]:
    splitter = LineSplitter(limit)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.end()


def event(name: str, size: int = 0) -> bytes:
    obj = {"metadata": {"name": name}, "data": {"k": "x" * size}}
    return json.dumps({"type": "ADDED", "object": obj}).encode()


def test_a_line_split_across_reads_comes_out_whole() -> None:
    line = event("a", 3000)
    chunks = [line[i : i + 7] for i in range(0, len(line), 7)] + [b"\n"]
    assert split(chunks) == [line]
    # every possible cut of two lines into two reads
    both = event("a") + b"\n" + event("b") + b"\n"
    for cut in range(len(both) + 1):
        assert split([both[:cut], both[cut:]]) == [event("a"), event("b")], cut


def test_several_events_in_one_read_and_blank_lines_dropped() -> None:
    chunk = b"\n".join([event("a"), event("b"), b"", event("c")]) + b"\n\n"
    splitter = LineSplitter()
    assert splitter.feed(chunk) == [event("a"), event("b"), event("c")]
    assert splitter.end() == []


def test_crlf_line_endings_even_when_the_cr_ends_one_read() -> None:
    assert split([event("a") + b"\r\n" + event("b") + b"\r\n"]) == [event("a"), event("b")]
    assert split([event("a") + b"\r", b"\n" + event("b") + b"\r", b"\n"]) == [
        event("a"),
        event("b"),
    ]


def test_the_last_line_without_a_newline_is_not_lost() -> None:
    splitter = LineSplitter()
    assert splitter.feed(event("a") + b"\n" + event("b")[:10]) == [event("a")]
    assert splitter.feed(event("b")[10:]) == []
    assert splitter.end() == [event("b")]
    assert splitter.end() == []  # nothing kept twice


def test_an_event_larger_than_aiohttps_readline_limit_passes() -> None:
    # aiohttp's readline refuses a line over 512 KiB; a Secret of 1 MiB is ~1.4 MiB on a watch.
    line = event("big", 1024 * 1024 + 400 * 1024)
    chunks = [line[i : i + 256 * 1024] for i in range(0, len(line), 256 * 1024)]
    (only,) = split([*chunks, b"\n"])
    assert only == line
    assert next(parse_watch_lines([only])).object["metadata"]["name"] == "big"


def test_a_line_past_the_bound_is_refused_as_soon_as_it_passes_it() -> None:
    splitter = LineSplitter(limit=100)
    assert splitter.feed(b"x" * 100 + b"\n") == [b"x" * 100]  # exactly the bound is allowed
    splitter.feed(b"y" * 60)
    with pytest.raises(EventTooLarge, match="ran past 100 bytes"):
        splitter.feed(b"y" * 41)  # no newline yet: refused before the rest arrives
    with pytest.raises(EventTooLarge):
        LineSplitter(limit=100).feed(b"z" * 101 + b"\n")  # whole in one read
    with pytest.raises(EventTooLarge):
        LineSplitter(limit=100).feed(b"z" * 101)  # never ends


def test_the_bound_is_above_what_the_api_server_can_send() -> None:
    # etcd keeps at most 1.5 MiB per object; as JSON each byte becomes at most six ("\u0001").
    assert MAX_EVENT_BYTES > 6 * 1536 * 1024


def test_events_of_the_lines() -> None:
    assert list(parse_watch_lines([event("a"), b"  "])) == [
        WatchEvent("ADDED", {"metadata": {"name": "a"}, "data": {"k": ""}})
    ]
