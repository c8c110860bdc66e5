"""Durations typed by people: ``90d``, ``12h``, ``30m``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paitient_common.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("4w", timedelta(weeks=4)),
        ("45s", timedelta(seconds=45)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_valid_durations(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "d",
        "90",
        "0d",
        "-5d",
        "1.5h",
        "90D",
        "3M",
        "1y",
        "90 d",
        "1d2h",
        "\u0669\u0660d",  # Arabic-Indic digits
        "90d\n5",
        "9999999d",
    ],
)
def test_invalid_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*e\.g\. 90d, 12h, 30m"):
        parse_duration(text)


def test_durations_have_a_ceiling() -> None:
    with pytest.raises(ValueError, match="longer than the maximum of 3660 days"):
        parse_duration("100000h")
    assert parse_duration("100000h", maximum=None) == timedelta(hours=100000)
    with pytest.raises(ValueError, match="maximum of 30 days"):
        parse_duration("31d", maximum=timedelta(days=30))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=30), "30d"),
        (timedelta(days=14), "2w"),
        (timedelta(hours=36), "36h"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=5), "5m"),
    ],
)
def test_format_duration_is_parse_durations_inverse(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
