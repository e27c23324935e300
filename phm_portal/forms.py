"""Helpers the page views share."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from phm_portal.errors import DomainError


def add_service_error(form: forms.Form, exc: DomainError | ValidationError) -> None:
    """Put a service's refusal on the form, on the field it names where the form has it."""
    if isinstance(exc, DomainError):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return
    for field, errors in (
        exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    ):
        form.add_error(field if field in form.fields else None, errors)
