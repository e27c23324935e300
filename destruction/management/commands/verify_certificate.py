from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from destruction import selectors
from phm_portal.errors import DomainError


class Command(BaseCommand):
    help = "Check a data destruction certificate (PDF): genuine, unmodified, and whose."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        try:
            with path.open("rb") as f:
                # One byte over the limit is enough for the check to refuse the file.
                data = f.read(settings.PHM_CERTIFICATE_MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        try:
            result = selectors.certificate_verify(data=data)
        except DomainError as exc:  # too large, or not a readable PDF
            raise CommandError(f"{path} cannot be checked: {exc.message}") from None
        yes_no = {True: "yes", False: "NO"}
        self.stdout.write(f"Genuine (signed by this portal): {yes_no[result.genuine]}")
        self.stdout.write(f"Unmodified since signing: {yes_no[result.unmodified]}")
        if result.serial:
            self.stdout.write(f"Serial: {result.serial}")
            self.stdout.write(f"Programme: {result.programme_name} ({result.programme})")
            self.stdout.write(f"Destruction run: {result.run}")
        if result.signed_by:
            self.stdout.write(f"Signed by: {result.signed_by}")
        if result.signed_at:
            self.stdout.write(f"Signed at: {result.signed_at:%Y-%m-%d %H:%M:%S %Z}")
        for reason in result.reasons:
            self.stdout.write(f"- {reason}")
        if not result.valid:
            raise CommandError("The certificate is NOT valid.")
        self.stdout.write(self.style.SUCCESS("The certificate is valid."))
