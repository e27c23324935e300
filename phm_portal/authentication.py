"""How the API knows who calls: an API token, or a browser session with its second factor.

One reading of the Authorization header serves both the API (ApiTokenAuthentication) and
SecondFactorMiddleware, so the two can never disagree about what a header proves:

- no header (or an empty one): no token; the browser session may apply;
- `Token <key>` (the scheme in any case, one space, a key without spaces): the token,
  which must exist and work now (governance.models.ApiToken.refusal);
- anything else (Bearer, Basic, "Token" alone, "Token a b", odd spaces): refused with a
  401 naming the header. It never falls through to the session.

A session of a CSU admin or DPO that has not confirmed a one-time code
(PHM_REQUIRE_2FA) is not signed in as far as the API is concerned
(VerifiedSessionAuthentication), even if the middleware were left out.
"""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions

from phm_portal.signin import needs_second_factor

KEYWORD = "Token"
_TOKEN_HEADER = re.compile(r"(?i:token) ([A-Za-z0-9_\-]{1,200})")
MALFORMED = (
    "The Authorization header is not understood: send 'Token <token>' with the token from "
    "POST /api/v1/auth/token/ (no other scheme is accepted), or no Authorization header."
)
UNKNOWN = "Invalid token: it does not exist or was revoked. Ask for a new one."


def token_key_from_header(request: HttpRequest) -> str | None:
    """Return the key of a `Token <key>` Authorization header; None when there is no header.

    Raise AuthenticationFailed for any other header.
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None or header.strip() == "":
        return None
    match = _TOKEN_HEADER.fullmatch(header)
    if match is None:
        raise exceptions.AuthenticationFailed(MALFORMED)
    return match.group(1)


def authenticate_token(key: str):
    """Return (user, token) for a key that works now; raise AuthenticationFailed otherwise."""
    from governance import services
    from governance.models import ApiToken

    token = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(key)).first()
    if token is None:
        raise exceptions.AuthenticationFailed(UNKNOWN)
    now = timezone.now()
    reason = token.refusal(now=now)
    if reason:
        raise exceptions.AuthenticationFailed(reason)
    services.api_token_mark_used(token=token, now=now)
    return token.user, token


def authenticate_header(request: HttpRequest):
    """Return (user, token) for the request's token, None without one; raise if it fails.

    The answer is kept on the request: SecondFactorMiddleware asks first, then the API's
    authentication asks again for the same request, and the token is looked up (and its
    use recorded) once.
    """
    cached = getattr(request, "_phm_token_auth", None)
    if cached is not None:
        return cached
    key = token_key_from_header(request)
    result = None if key is None else authenticate_token(key)
    request._phm_token_auth = result
    return result


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>` with one of the portal's hashed, expiring tokens."""

    keyword = KEYWORD

    def authenticate(self, request):
        return authenticate_header(request._request)

    def authenticate_credentials(self, key):
        return authenticate_token(key)


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """The browser session, refused for a CSU admin or DPO who has not confirmed a code."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, auth = result
        if needs_second_factor(user) and not _is_verified(user):
            raise exceptions.PermissionDenied(
                "Two-factor authentication is required: confirm a one-time code in the "
                "portal's pages (or use a token obtained with 'otp')."
            )
        return user, auth


def _is_verified(user) -> bool:
    """django-otp's OTPMiddleware marks the session's user; no mark means not verified."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified()) if callable(is_verified) else False


class VerifiedSessionScheme(SessionScheme):
    """Describe VerifiedSessionAuthentication in the OpenAPI schema as the session cookie."""

    target_class = VerifiedSessionAuthentication
