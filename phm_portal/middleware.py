"""The portal's own middleware: the second factor gate, the database-down answer, strict uploads."""

from __future__ import annotations

import functools
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed

from phm_portal.authentication import KEYWORD as TOKEN_KEYWORD
from phm_portal.authentication import authenticate_header
from phm_portal.lib.upload_checks import parse_file_upload_strictly
from phm_portal.signin import has_second_factor, needs_second_factor

log = logging.getLogger(__name__)

DATABASE_DOWN = (
    "The portal cannot reach its database just now. Nothing you sent has been saved. "
    "Try again in a few minutes."
)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with a plain message: JSON for the API, a static page (no database) otherwise."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": DATABASE_DOWN}, status=503)
    else:
        response = HttpResponse(
            render_to_string("503.html", {"message": DATABASE_DOWN}), status=503
        )
    response["Retry-After"] = "30"
    response["Cache-Control"] = "no-store"
    return response


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


class DatabaseUnavailableMiddleware:
    """Answer 503 with a plain message when the database cannot be reached.

    Views (and what they call: sessions, the signed-in user) raise OperationalError or
    InterfaceError when the connection fails; handler500 does the same for failures
    outside views (phm_portal.errorviews.server_error).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        log.error("Database unavailable answering %s: %s", request.path, exception)
        return database_unavailable_response(request)


class SecondFactorMiddleware:
    """Until a CSU admin or DPO has confirmed a one-time code, they may only set one up,
    confirm one or sign out (PHM_REQUIRE_2FA). Sits after django-otp's OTPMiddleware.

    On the API, such a request passes only with an API token that works now (read as the
    API reads it: phm_portal.authentication); any other Authorization header is a 401,
    none a 403. The API's VerifiedSessionAuthentication refuses the session too.
    """

    EXEMPT_NAMES = ("two-factor-setup", "two-factor-verify", "logout", "login", "health")

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self._exempt: set[str] | None = None

    def _exempt_paths(self) -> set[str]:
        if self._exempt is None:
            self._exempt = {reverse(name) for name in self.EXEMPT_NAMES} | {reverse("api-token")}
        return self._exempt

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.PHM_REQUIRE_2FA:
            try:
                refused = self._refuse(request)
            except (OperationalError, InterfaceError) as exc:  # the user is read here first
                log.error("Database unavailable answering %s: %s", request.path, exc)
                return database_unavailable_response(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path
        if path.startswith(settings.STATIC_URL) or path in self._exempt_paths():
            return None
        user = getattr(request, "user", None)
        if not needs_second_factor(user) or user.is_verified():
            return None
        if path.startswith("/api/v1/"):
            # Not the mere presence of a header: only a token that works now lets the API
            # act as the token's holder; any other header is refused, never the session.
            try:
                if authenticate_header(request) is not None:
                    return None
            except AuthenticationFailed as exc:
                response = JsonResponse({"detail": str(exc.detail)}, status=401)
                response["WWW-Authenticate"] = TOKEN_KEYWORD
                return response
            return JsonResponse(
                {
                    "detail": "Two-factor authentication is required: confirm a one-time "
                    "code in the portal's pages (or use a token obtained with 'otp')."
                },
                status=403,
            )
        target = "two-factor-verify" if has_second_factor(user) else "two-factor-setup"
        query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
        return redirect(reverse(target) + (f"?{query}" if query else ""))


class StrictUploadsMiddleware:
    """Parse the pages' uploads with the strict multipart parser (lib.upload_checks).

    A file name carrying a folder path is refused with a 400 naming it (handler400)
    before any of the request's files is written; the API's parser does the same
    (phm_portal.rest.MultiPartParser). Placed before anything reads request.POST.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.parse_file_upload = functools.partial(parse_file_upload_strictly, request)
        return self.get_response(request)
