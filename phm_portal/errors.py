"""The domain's exceptions: the API and the pages turn them into 400 and 409."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the action; the message is for the person.

    `code` names the refusal for a program (the API's "code"; a page may offer the way
    out of it, e.g. a link), where the words alone would have to be parsed.
    """

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: object = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        self.code = code


class InvalidInput(DomainError):
    """The input breaks a rule (400)."""

    status_code = 400


class NotAllowedNow(DomainError):
    """The action is not allowed in the object's present state (409)."""

    status_code = 409
