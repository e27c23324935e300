"""Sign-in hardening: lockout after repeated failures (django-axes) and a second factor
(TOTP with recovery codes, django-otp) for CSU admins and DPOs.

The second factor is asked for after the password: the session is signed in but not
verified until a code is confirmed, and SecondFactorMiddleware lets such a session do
nothing but set up or confirm the code (or sign out). API tokens are only handed out
with a valid code (`check_second_factor`).
"""

from __future__ import annotations

import datetime as dt
import logging
from smtplib import SMTPException

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.helpers import get_client_username
from axes.models import AccessAttempt, AccessLog
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.mail import send_mail
from django.db.models import Sum
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from phm_portal.audit import audit_log
from phm_portal.lib.client import client_address
from phm_portal.models import AuditEvent

log = logging.getLogger(__name__)

RECOVERY_CODES = 10
RECOVERY_DEVICE_NAME = "Recovery codes"
TOTP_DEVICE_NAME = "Authenticator app"


class LockoutBackend(AxesStandaloneBackend):
    """Refuse every sign-in of an account that is locked out at the client's address.

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


# --- lockout policy ------------------------------------------------------------------
# Failures are counted per account AND client address (AXES_LOCKOUT_PARAMETERS), so
# failures from elsewhere never lock a person out at their own address. Many addresses
# guessing one account (or one address guessing many accounts) put the account (the
# address) "under attack" for the window: addresses the account has not signed in from
# lately then get one try instead of PHM_LOGIN_FAILURE_LIMIT, and the CSU admins are told.
KNOWN_ADDRESS_DAYS = 90  # an address the account signed in from this recently keeps its tries


def _window_start() -> dt.datetime:
    return timezone.now() - settings.AXES_COOLOFF_TIME


def _recent_failures(**which: str) -> int:
    """Return the failed sign-ins of the lockout window matching which (username or address)."""
    total = AccessAttempt.objects.filter(attempt_time__gte=_window_start(), **which).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return total or 0


def account_under_attack(*, username: str) -> bool:
    """Whether the account failed to sign in too often, from all addresses, in the window."""
    return bool(username) and (
        _recent_failures(username=username) >= settings.PHM_LOGIN_ACCOUNT_FAILURE_LIMIT
    )


def address_under_attack(*, address: str) -> bool:
    """Whether sign-ins from the address failed too often, on all accounts, in the window."""
    return bool(address) and (
        _recent_failures(ip_address=address) >= settings.PHM_LOGIN_ADDRESS_FAILURE_LIMIT
    )


def known_address(*, username: str, address: str) -> bool:
    """Whether the account signed in successfully from the address lately."""
    since = timezone.now() - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    return (
        bool(username and address)
        and AccessLog.objects.filter(
            username=username, ip_address=address, attempt_time__gte=since
        ).exists()
    )


def sign_in_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """Return the username a sign-in is counted under (AXES_USERNAME_CALLABLE).

    What was typed, cut to the longest username there can be: a longer one (the token
    endpoint takes any length) names nobody and must not overflow django-axes's columns.
    """
    if credentials:
        raw = credentials.get("username")
    else:
        raw = getattr(request, "data", request.POST).get("username")
    if raw is None:
        return None
    return str(raw).replace("\x00", "")[:150]


def sign_in_recorded(*, request: HttpRequest, user) -> None:
    """Record a password sign-in made without django.contrib.auth.login (an API token).

    As django-axes does for a page sign-in: the account's failures at this address are
    forgotten and the address becomes one the account is known to sign in from.
    """
    username = user.get_username()
    address = client_address(request) or None
    AccessAttempt.objects.filter(username=username, ip_address=address).delete()
    AccessLog.objects.create(
        username=username,
        ip_address=address,
        user_agent=request.META.get("HTTP_USER_AGENT", "<unknown>")[:255],
        http_accept=request.META.get("HTTP_ACCEPT", "<unknown>")[:1025],
        path_info=request.META.get("PATH_INFO", "<unknown>")[:255],
        attempt_time=timezone.now(),
    )


def _who(request: HttpRequest, credentials: dict | None) -> tuple[str, str]:
    """Return (username, client address) of a sign-in, as django-axes counts them."""
    credentials = credentials or getattr(request, "axes_credentials", None)
    username = str(get_client_username(request, credentials) or "")
    address = getattr(request, "axes_ip_address", None) or client_address(request)
    return username, address


def failure_limit(request: HttpRequest, credentials: dict | None = None) -> int:
    """Return the failures that lock this account at this address (AXES_FAILURE_LIMIT).

    PHM_LOGIN_FAILURE_LIMIT; one while the account or the address is under attack and
    the account has not signed in from the address lately. Whatever strangers do, the
    person keeps every try at their usual addresses and at least one anywhere else.
    """
    limit = settings.PHM_LOGIN_FAILURE_LIMIT
    username, address = _who(request, credentials)
    under_attack = account_under_attack(username=username) or address_under_attack(address=address)
    if under_attack and not known_address(username=username, address=address):
        return 1
    return limit


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message(*, under_attack: bool = False) -> str:
    if under_attack:
        return (
            "Signing in to this account has failed many times from other places, so from an "
            "address it has not signed in from before it gets a single try: signing in from "
            f"here is locked for {lockout_minutes()} minutes. Sign in from a network you "
            "have used before, or ask a CSU admin."
        )
    return (
        f"Too many failed sign-ins: signing in is locked for {lockout_minutes()} minutes. "
        "Try again later, or ask a CSU admin to reset your password."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The answer to a locked-out sign-in: JSON for the API, a page otherwise (429)."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    message = lockout_message(
        under_attack=failure_limit(request, credentials) < settings.PHM_LOGIN_FAILURE_LIMIT
    )
    if request.path.startswith("/api/"):
        response = JsonResponse({"non_field_errors": [message]}, status=429)
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"message": message, "minutes": lockout_minutes()},
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
        "ip": getattr(request, "axes_ip_address", None) or client_address(request),
    }


def _alert_account_under_attack(*, username: str, request: HttpRequest) -> None:
    """Audit, and email the active CSU admins, once per account per lockout window."""
    from governance.models import User
    from governance.selectors import csu_admin_emails

    if not User.objects.filter(username=username).exists():
        return  # guesses at names nobody has: no alert (a flood of them would drown the real)
    if AuditEvent.objects.filter(
        action="auth.account_under_attack", actor=username, at__gte=_window_start()
    ).exists():
        return
    failures = _recent_failures(username=username)
    addresses = (
        AccessAttempt.objects.filter(username=username, attempt_time__gte=_window_start())
        .values("ip_address")
        .distinct()
        .count()
    )
    admins = csu_admin_emails()
    audit_log(
        actor=username,
        action="auth.account_under_attack",
        details={
            "username": username,
            "failures": failures,
            "addresses": addresses,
            "minutes": lockout_minutes(),
            "admins_emailed": len(admins),
            **_client_details(request),
        },
    )
    if not admins:
        return
    try:
        send_mail(
            subject=f"PHM portal: many failed sign-ins to the account {username}",
            message=(
                f"Sign-ins to the account {username} failed {failures} times from "
                f"{addresses} addresses in the last {lockout_minutes()} minutes, the last "
                f"from {_client_details(request)['ip'] or 'an unknown address'}.\n\n"
                "Until the failures stop, each address the account has not signed in from "
                "lately gets a single try; its usual addresses sign in as before.\n"
                "The failed sign-ins are in the portal's audit log (auth.sign_in_failed). "
                "If the person did not make them, consider resetting their password.\n"
            ),
            from_email=None,
            recipient_list=admins,
        )
    except (OSError, SMTPException):
        # The audit event above is the record; a mail server that is down must not turn
        # a failed sign-in into an error page.
        log.exception("Could not email the CSU admins about the account %s", username)


def _note_address_under_attack(*, address: str, request: HttpRequest) -> None:
    """Audit, once per address per lockout window, an address guessing many accounts."""
    if AuditEvent.objects.filter(
        action="auth.address_under_attack", details__ip=address, at__gte=_window_start()
    ).exists():
        return
    audit_log(
        actor="anonymous",
        action="auth.address_under_attack",
        details={
            "failures": _recent_failures(ip_address=address),
            "minutes": lockout_minutes(),
            **_client_details(request),
        },
    )


@receiver(user_login_failed, dispatch_uid="phm_audit_sign_in_failed")
def audit_sign_in_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    username = str(credentials.get("username") or "")[:150]
    refused = bool(getattr(request, "phm_refused_while_locked", False))
    audit_log(
        actor=username or "anonymous",
        action="auth.sign_in_refused_locked" if refused else "auth.sign_in_failed",
        details={"username": username, **_client_details(request)},
    )
    if refused or request is None:
        return
    # django-axes (connected first) has counted this failure.
    if username and account_under_attack(username=username):
        _alert_account_under_attack(username=username, request=request)
    address = _client_details(request)["ip"]
    if address and address_under_attack(address=address):
        _note_address_under_attack(address=address, request=request)


@receiver(user_locked_out, dispatch_uid="phm_audit_locked_out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    if getattr(request, "phm_refused_while_locked", False):
        return  # django-axes says so again for every attempt while locked: audited above
    name = str(username or "")[:150]
    limit = failure_limit(request) if request is not None else settings.PHM_LOGIN_FAILURE_LIMIT
    audit_log(
        actor=name or "anonymous",
        action="auth.locked_out",
        details={
            "username": name,
            "ip": ip_address or "",
            "failures": limit,
            "under_attack": limit < settings.PHM_LOGIN_FAILURE_LIMIT,
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
