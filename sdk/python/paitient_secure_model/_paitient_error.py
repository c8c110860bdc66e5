"""The base class of every SDK error, alone so that imports run one way: ``_types`` raises it on
an answer it cannot parse, ``_exceptions`` builds the hierarchy on it and on ``_types`` (its
``WaitTimeoutError`` carries a ``DeploymentStatus``)."""

from __future__ import annotations

from typing import Any


class PaitientError(Exception):
    """Base class of every error raised by the PaiTIENT SDK."""

    message: str
    status_code: int | None
    type: str | None
    request_id: str | None
    body: Any

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        type: str | None = None,  # noqa: A002 - the contract's field name
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"type={self.type!r}, request_id={self.request_id!r})"
        )
