"""The page where a person sees their API tokens and revokes them (after confirming)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from governance import permissions as perms
from governance import selectors, services
from phm_portal.signin import needs_second_factor


@never_cache
@login_required
def api_token_list(request: HttpRequest) -> HttpResponse:
    """Show the person's tokens that still work (never their keys, which are not kept)."""
    return render(
        request,
        "registration/api_tokens.html",
        {
            "tokens": selectors.api_tokens_live(user=request.user),
            "token_hours": settings.PHM_API_TOKEN_HOURS,
            "needs_code": needs_second_factor(request.user),
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask to confirm, then revoke one of the person's own tokens (anyone else's is a 404)."""
    token = perms.get_api_token_for_user(request.user, pk)
    if request.method == "POST":
        services.api_token_revoke(actor=request.user, token=token)
        label = f"“{token.name}” ({token.prefix}…)" if token.name else f"{token.prefix}…"
        messages.success(request, f"The token {label} is revoked: it no longer works.")
        return redirect("api-tokens")
    return render(request, "registration/api_token_revoke.html", {"token": token})
