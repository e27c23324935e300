"""Error pages in the portal's look, with the reason where it is safe to show."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from phm_portal.lib.upload_checks import UnsafeFileName
from phm_portal.lib.upload_handlers import UploadTooLarge
from phm_portal.middleware import database_unavailable_response, is_database_unavailable


def _is_api(request: HttpRequest) -> bool:
    """The API answers in JSON even where no view ran (an unknown URL, a crash)."""
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Only our own upload refusal is worded for people; other 400s here (a forged host,
    # too many fields) keep their reason out of the answer.
    reason = str(exception) if isinstance(exception, (UnsafeFileName, UploadTooLarge)) else ""
    status = exception.status_code if isinstance(exception, UploadTooLarge) else 400
    if _is_api(request):
        return JsonResponse({"detail": reason or "Bad request."}, status=status)
    return render(request, "400.html", {"reason": reason}, status=status)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": str(exception or "") or "Forbidden."}, status=403)
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while the exception is handled: a database that cannot be reached outside a
    # view (a middleware reading the session) is a 503 with a plain message too.
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response(request)
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return render(request, "500.html", status=500)
