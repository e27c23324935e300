"""The domain's exceptions: the API and the pages turn them into 400 and 409."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the action; the message is for the person."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidInput(DomainError):
    """The input breaks a rule (400)."""

    status_code = 400


class NotAllowedNow(DomainError):
    """The action is not allowed in the object's present state (409)."""

    status_code = 409
