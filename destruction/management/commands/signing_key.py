from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from destruction import services
from phm_portal.errors import DomainError
from phm_portal.lib import signing


class Command(BaseCommand):
    help = (
        "The portal's signing key for destruction certificates: `init` makes a key and a "
        "self-signed certificate in an encrypted PKCS#12 file; `show` prints the certificate."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["init", "show"])
        parser.add_argument(
            "--common-name", default=signing.DEFAULT_COMMON_NAME, help="The certificate's CN."
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Make a new key even if one exists (old certificates still verify).",
        )

    def handle(self, *args, **options) -> None:
        if options["action"] == "init":
            try:
                identity = services.signing_key_init(
                    common_name=options["common_name"], replace=options["replace"]
                )
            except DomainError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(
                self.style.SUCCESS(
                    f"Signing key made: {settings.PHM_SIGNING_P12_FILE} (PKCS#12, encrypted)."
                )
            )
        else:
            try:
                identity = signing.load_identity(
                    settings.PHM_SIGNING_P12_FILE, services.signing_password()
                )
            except signing.SigningKeyMissing as exc:
                raise CommandError(str(exc)) from None
            services.signing_certificate_register(identity.certificate)
        self.stdout.write(f"Subject: {identity.subject}")
        self.stdout.write(f"SHA-256 fingerprint: {identity.fingerprint}")
        self.stdout.write(
            f"Valid until: {identity.certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
