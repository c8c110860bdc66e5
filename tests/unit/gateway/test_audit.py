"""The gateway's audit line (``paitient_gateway.audit``): one JSON line per request from a fixed
list of fields, on a logger of its own that writes nowhere else."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from paitient_gateway.audit import AUDIT_LOGGER, AuditRecord, audit_logger, write_audit


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    existing = logging.getLogger(AUDIT_LOGGER)
    saved = existing.handlers[:]
    existing.handlers.clear()
    stream = io.StringIO()
    try:
        yield audit_logger(stream), stream
    finally:
        existing.handlers[:] = saved


def test_one_line_per_request_with_exactly_the_promised_fields(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    record = AuditRecord("req_1", "/v1/completions", "demo", tenant="acme", client_id="acme-app")
    record.key_id, record.status = "abcdefghijkl", 200
    record.prompt_tokens, record.completion_tokens, record.latency_ms = 4, 8, 1.23456
    write_audit(log, record)
    write_audit(
        log, AuditRecord("req_2", "other", "demo", status=404, error_type="not_found_error")
    )
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {
        "time", "request_id", "tenant", "client_id", "key_id", "deployment", "route", "status",
        "prompt_tokens", "completion_tokens", "latency_ms", "error_type",
    }  # fmt: skip
    assert first["latency_ms"] == 1.23 and first["prompt_tokens"] == 4
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert (second["tenant"], second["status"], second["error_type"]) == (
        None,
        404,
        "not_found_error",
    )


def test_the_audit_trail_is_not_application_logging(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    application = io.StringIO()
    root_handler = logging.StreamHandler(application)
    logging.getLogger().addHandler(root_handler)
    try:
        write_audit(log, AuditRecord("req_3", "/v1/models", "demo"))
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert stream.getvalue().count("\n") == 1
    assert application.getvalue() == ""  # nothing reaches the application's handlers
    assert audit_logger(stream) is log  # set up once: still one line, no second handler
    write_audit(log, AuditRecord("req_4", "/v1/models", "demo"))
    assert stream.getvalue().count("\n") == 2
