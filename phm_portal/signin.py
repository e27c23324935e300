"""Sign-in hardening: lockout after repeated failures (django-axes) and a second factor
(TOTP with recovery codes, django-otp) for CSU admins and DPOs.

The second factor is asked for after the password: the session is signed in but not
verified until a code is confirmed, and SecondFactorMiddleware lets such a session do
nothing but set up or confirm the code (or sign out). API tokens are only handed out
with a valid code (`check_second_factor`).
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from phm_portal.audit import audit_log

RECOVERY_CODES = 10
RECOVERY_DEVICE_NAME = "Recovery codes"
TOTP_DEVICE_NAME = "Authenticator app"


class LockoutBackend(AxesStandaloneBackend):
    """Refuse every sign-in of a locked-out account or client.

    Sign-ins through the pages and the token endpoint always carry the request. A call
    without one (the test client's login(), the shell) is not a sign-in from outside;
    it is left to the other backends.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            # Refused without looking at the password: audited as such, not as a new lockout.
            request.phm_refused_while_locked = True
            raise


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message() -> str:
    return (
        f"Too many failed sign-ins: signing in is locked for {lockout_minutes()} minutes. "
        "Try again later, or ask a CSU admin to reset your password."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The answer to a locked-out sign-in: JSON for the API, a page otherwise (429)."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = JsonResponse({"non_field_errors": [lockout_message()]}, status=429)
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"message": lockout_message(), "minutes": lockout_minutes()},
            status=429,
        )
    response["Retry-After"] = retry_after
    return response


def _client_details(request: HttpRequest | None) -> dict:
    if request is None:
        return {"via": "internal"}
    path = getattr(request, "path", "") or ""
    return {
        "via": "api" if path.startswith("/api/") else "page",
        "ip": getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", ""),
    }


@receiver(user_login_failed, dispatch_uid="phm_audit_sign_in_failed")
def audit_sign_in_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    username = str(credentials.get("username") or "")[:150]
    refused = bool(getattr(request, "phm_refused_while_locked", False))
    audit_log(
        actor=username or "anonymous",
        action="auth.sign_in_refused_locked" if refused else "auth.sign_in_failed",
        details={"username": username, **_client_details(request)},
    )


@receiver(user_locked_out, dispatch_uid="phm_audit_locked_out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    if getattr(request, "phm_refused_while_locked", False):
        return  # django-axes says so again for every attempt while locked: audited above
    name = str(username or "")[:150]
    audit_log(
        actor=name or "anonymous",
        action="auth.locked_out",
        details={
            "username": name,
            "ip": ip_address or "",
            "failures": settings.AXES_FAILURE_LIMIT,
            "minutes": lockout_minutes(),
            **{k: v for k, v in _client_details(request).items() if k == "via"},
        },
    )


# --- second factor ------------------------------------------------------------------
def needs_second_factor(user) -> bool:
    """Whether this person must confirm a one-time code (CSU admins and DPOs, when on)."""
    return bool(
        settings.PHM_REQUIRE_2FA
        and user is not None
        and user.is_authenticated
        and getattr(user, "role", None) in settings.PHM_2FA_ROLES
    )


def has_second_factor(user) -> bool:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def match_code(user, code: str):
    """Return the confirmed device (authenticator or recovery codes) the code is valid for.

    A recovery code is used up by a successful match.
    """
    from django_otp import match_token

    code = "".join((code or "").split()).lower()
    if not code:
        return None
    return match_token(user, code)


def check_second_factor(user, code: str | None) -> tuple[object | None, str]:
    """Return (device, "") when the code is valid, else (None, the reason to show)."""
    if not has_second_factor(user):
        return None, (
            "This account must use two-factor authentication and has not set it up yet: "
            "sign in to the portal's pages once to set it up, then ask for a token with "
            "a current code in 'otp'."
        )
    if not (code or "").strip():
        return None, (
            "A one-time code is required for this account: send the current code from "
            "your authenticator app (or an unused recovery code) in 'otp'."
        )
    device = match_code(user, code)
    if device is None:
        return None, "That one-time code is not valid (it may have expired, or been used)."
    return device, ""


# --- pages ---------------------------------------------------------------------------
def _safe_next(request: HttpRequest) -> str:
    from django.urls import reverse
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _qr_svg(text: str) -> str:
    """The QR code of the text as an inline SVG made here (no image request, no script)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg = image.to_string(encoding="unicode")
    return svg.replace("<svg ", '<svg class="portal-qr" role="img" aria-label="QR code" ', 1)
