"""The SDKs' stand-ins answer from sdk/testdata/errors.json: it must be what the front door
answers today (a changed message fails here until the file is written again)."""

from __future__ import annotations

import json

from tests.contract.service_errors import FIXTURE, render


def test_the_sdk_error_fixture_is_what_the_front_door_answers() -> None:
    recorded = json.loads(FIXTURE.read_text())
    assert recorded == render(), (
        f"{FIXTURE} is out of date: run `python -m tests.contract.service_errors --write` "
        "and check the SDKs' tests still pass (make sdk-test)"
    )
