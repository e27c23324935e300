from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from phm_portal.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and report the first broken link."

    def handle(self, *args, **options) -> None:
        report = audit_verify()
        if not report.valid:
            raise CommandError(
                f"Audit chain BROKEN at event {report.first_bad_seq}: {report.reason} "
                f"({report.events} events read)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain valid: {report.events} events."))
