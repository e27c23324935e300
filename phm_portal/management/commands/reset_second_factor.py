from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.services import api_tokens_revoke_all
from phm_portal.audit import audit_log


class Command(BaseCommand):
    help = (
        "Remove a person's authenticator app and recovery codes (lost phone and codes): "
        "they set up a new one at their next sign-in."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No person with the username {options['username']!r}.")
        with transaction.atomic():
            totp, _ = TOTPDevice.objects.filter(user=user).delete()
            static, _ = StaticDevice.objects.filter(user=user).delete()
            audit_log(actor=None, action="auth.second_factor_reset", obj=user)
            tokens = api_tokens_revoke_all(user=user, actor=None, reason="second factor reset")
        self.stdout.write(
            f"Removed the second factor of {user.username} ({totp} app, {static} recovery "
            f"code sets, {tokens} API tokens); they set up a new one at their next sign-in."
        )
