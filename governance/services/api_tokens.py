"""API tokens: issue, revoke, and the bookkeeping of their use (see governance.models.ApiToken)."""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.models import ApiToken, User
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput

# How often the "last used" time of a token is written: not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def api_token_issue(
    *, user: User, second_factor: bool, name: str = "", via: str = "api"
) -> tuple[ApiToken, str]:
    """Make a token for the person and return it with its key, which is shown only now.

    `second_factor` says a one-time code was confirmed to get it. The person's tokens
    that no longer work (expired, or from before a new password) are removed first.
    """
    name = (name or "").strip()
    if len(name) > 100:
        raise InvalidInput("A token's name has at most 100 characters.", field="name")
    now = timezone.now()
    key = ApiToken.KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=key[: len(ApiToken.KEY_PREFIX) + 6],
        digest=ApiToken.digest_of(key),
        created_at=now,
        expires_at=now + dt.timedelta(hours=settings.PHM_API_TOKEN_HOURS),
        second_factor=second_factor,
        credentials_stamp=ApiToken.credentials_stamp_of(user),
    )
    token.full_clean()
    with transaction.atomic():
        _remove_dead(user=user, now=now)
        token.save()
        audit_log(
            actor=user,
            action="auth.api_token_issued",
            obj=user,
            details={
                "token": token.pk,
                "prefix": token.prefix,
                "name": token.name,
                "expires": token.expires_at.isoformat(),
                "second_factor": second_factor,
                "via": via,
            },
        )
    return token, key


def api_token_revoke(*, actor: User, token: ApiToken) -> None:
    """Revoke a token: it stops working at once."""
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(pk=token.pk).delete()
        if deleted:  # two clicks: the second finds nothing left to revoke or audit
            audit_log(
                actor=actor,
                action="auth.api_token_revoked",
                obj=token.user,
                details={"token": token.pk, "prefix": token.prefix, "name": token.name},
            )


def api_tokens_revoke_all(*, user: User, actor: User | None, reason: str) -> int:
    """Revoke every token of the person (their second factor changed); return how many."""
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user=user).delete()
        if deleted:
            audit_log(
                actor=actor,
                action="auth.api_tokens_revoked",
                obj=user,
                details={"tokens": deleted, "reason": reason},
            )
    return deleted


def api_token_mark_used(*, token: ApiToken, now: dt.datetime) -> None:
    """Note that the token was used, at most once a minute (one small write)."""
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)


def _remove_dead(*, user: User, now: dt.datetime) -> None:
    """Delete the person's tokens that can never work again (kept no longer than needed)."""
    stamp = ApiToken.credentials_stamp_of(user)
    ApiToken.objects.filter(user=user).filter(
        Q(expires_at__lte=now) | ~Q(credentials_stamp=stamp)
    ).delete()
