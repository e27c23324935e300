"""The pages where CSU admins and DPOs set up and confirm their second factor."""

from __future__ import annotations

from base64 import b32encode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.services import api_tokens_revoke_all
from phm_portal.audit import audit_log
from phm_portal.signin import (
    RECOVERY_CODES,
    RECOVERY_DEVICE_NAME,
    TOTP_DEVICE_NAME,
    _qr_svg,
    _safe_next,
    has_second_factor,
    match_code,
    needs_second_factor,
)


def _is_verified(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_verified", lambda: False)())


@never_cache
@sensitive_post_parameters("code")
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the key), confirm a code.

    Someone who already has one must confirm a code from it first: a stolen password
    alone cannot replace the second factor.
    """
    user = request.user
    if has_second_factor(user) and not _is_verified(request):
        return redirect(f"{_verify_url()}?next={request.get_full_path()}")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    error = ""
    if request.method == "POST":
        code = "".join(request.POST.get("code", "").split())
        if not code:
            error = "Enter the 6-digit code your authenticator app shows."
        elif not device.verify_token(code):
            error = (
                "That code is not right. Check the app shows this portal, and try the newest code."
            )
        else:
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            StaticDevice.objects.filter(user=user).delete()
            recovery = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME)
            codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
            StaticToken.objects.bulk_create(StaticToken(device=recovery, token=c) for c in codes)
            otp_login(request, device)
            audit_log(actor=user, action="auth.second_factor_set_up", obj=user)
            # Tokens issued before (under another second factor, or none) die with it.
            api_tokens_revoke_all(user=user, actor=user, reason="second factor set up")
            # Shown once: the codes are not kept anywhere the portal can show them again.
            return render(
                request,
                "registration/two_factor_codes.html",
                {"codes": codes, "next": _safe_next(request)},
            )
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "registration/two_factor_setup.html",
        {
            "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - made here from our own URL
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "error": error,
            "required": needs_second_factor(user),
            "replacing": has_second_factor(user),
            "next": request.POST.get("next") or request.GET.get("next", ""),
        },
        status=400 if error else 200,
    )


def _verify_url() -> str:
    from django.urls import reverse

    return reverse("two-factor-verify")


@never_cache
@sensitive_post_parameters("code")
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """Ask for the one-time code (or a recovery code) after the password."""
    user = request.user
    if not has_second_factor(user):
        return redirect("two-factor-setup")
    if _is_verified(request):
        return redirect(_safe_next(request))
    error = ""
    if request.method == "POST":
        device = match_code(user, request.POST.get("code", ""))
        if device is None:
            error = (
                "That code is not right. Enter the newest code your app shows, or a recovery code."
            )
            audit_log(actor=user, action="auth.second_factor_failed", obj=user)
        else:
            otp_login(request, device)
            used = "recovery code" if isinstance(device, StaticDevice) else "authenticator app"
            details = {"with": used}
            if isinstance(device, StaticDevice):
                details["recovery_codes_left"] = device.token_set.count()
            audit_log(actor=user, action="auth.second_factor_confirmed", obj=user, details=details)
            return redirect(_safe_next(request))
    return render(
        request,
        "registration/two_factor_verify.html",
        {"error": error, "next": request.POST.get("next") or request.GET.get("next", "")},
        status=400 if error else 200,
    )
