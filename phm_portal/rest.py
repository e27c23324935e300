"""What every API view shares: pagination and the translation of errors.

Kept apart from the views so that DRF can import it while its settings load.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from phm_portal.errors import DomainError


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Turn domain errors into 400/409 with the field named; let DRF do the rest."""
    if isinstance(exc, DomainError):
        key = exc.field or ("detail" if exc.status_code == 409 else "non_field_errors")
        body: dict = {key: [exc.message] if key != "detail" else exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)
