from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from destruction import selectors


class Command(BaseCommand):
    help = "Check a data destruction certificate (PDF): genuine, unmodified, and whose."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options) -> None:
        try:
            data = options["file"].read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        result = selectors.certificate_verify(data=data)
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
