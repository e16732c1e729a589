"""Errors raised when input or a rule of the centre is broken, with a stable machine code."""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the centre was broken (HTTP 422). `code` is stable; `message` is vi / en."""

    status = 422

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(DomainError):
    """The request itself is malformed (HTTP 400)."""

    status = 400


class NotFound(DomainError):
    """An id that does not exist (HTTP 404)."""

    status = 404


class Conflict(DomainError):
    """The request clashes with the current state (HTTP 409)."""

    status = 409
