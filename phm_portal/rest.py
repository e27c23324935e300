"""What every API view shares: pagination, parsers and the translation of errors.

Kept apart from the views so that DRF can import it while its settings load. Nothing
here may import rest_framework.views at module level: its APIView reads the parser
settings, which name this module, while the class is made (a cycle that broke start-up
whenever a system check was the first to load these settings).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, parsers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from phm_portal.errors import DomainError
from phm_portal.lib.upload_checks import StrictMultiPartParser, UnsafeFileName
from phm_portal.lib.upload_handlers import UploadTooLarge


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    kinds = {str: "a string", list: "an array", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), "another value")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body that is not a JSON object (every request body here is one)."""

    def parse(self, stream, media_type=None, parser_context=None) -> dict:
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, dict):
            raise exceptions.ParseError(
                f"The request body must be a JSON object ({{...}}), not {_json_kind(data)}."
            )
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser on the strict Django one: a file name with a path is a 400."""

    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        request = (parser_context or {})["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parsers.get_encoding(parser_context)
        try:
            parser = StrictMultiPartParser(meta, stream, request.upload_handlers, encoding)
            return parsers.DataAndFiles(*parser.parse())
        except UnsafeFileName as exc:
            raise exceptions.ParseError(str(exc)) from exc
        except UploadTooLarge:
            raise  # a 413 (exception_handler), not a parse error
        except MultiPartParserError as exc:
            raise exceptions.ParseError(f"Multipart form parse error - {exc}") from exc


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Turn domain errors into 400/409 with the field named; let DRF do the rest."""
    if isinstance(exc, DomainError):
        key = exc.field or ("detail" if exc.status_code == 409 else "non_field_errors")
        body: dict = {key: [exc.message] if key != "detail" else exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        if exc.code is not None:
            body["code"] = exc.code
        return Response(body, status=exc.status_code)
    if isinstance(exc, UploadTooLarge):
        return Response({"detail": str(exc)}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    from rest_framework.views import exception_handler as drf_exception_handler  # see above

    return drf_exception_handler(exc, context)


# --- the schema: the answers every operation may give besides its success -----------
ERROR_SCHEMA = {
    "type": "object",
    "description": 'An error: `{"detail": "..."}`, or each refused field named with its messages; '
    'a refusal a program may act on also has a `"code"`, e.g. `"national_check_missing"`.',
    "additionalProperties": True,
}


def _error(description: str, *, csv: bool = False) -> dict:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    if csv:  # an operation that answers CSV says its errors in CSV too when asked to
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document the error answers of every operation.

    401/403 (not signed in, or above the person's role), 404 (no such object, or not the
    person's organisation; also a page past the end of a list), 400 for bad input; 409 for
    writes refused in the object's present state; 413 and 415 for uploads.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = {
                "400": "Invalid input; each problem is named.",
                "401": "Not signed in.",
                "403": "The person's role may not do this.",
                "404": "No such object, or not one of the person's organisations.",
            }
            if method in ("post", "put", "patch", "delete"):
                wanted["409"] = "Not allowed in the object's present state."
                wanted["415"] = "The request body's media type is not accepted."
                if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                    wanted["413"] = "The uploaded file is larger than the limit."
            csv = any("text/csv" in r.get("content", {}) for r in responses.values())
            for code, description in wanted.items():
                responses.setdefault(code, _error(description, csv=csv))
    return result
