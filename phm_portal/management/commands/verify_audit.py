from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from phm_portal.audit import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit log: its hash chain, its append-only trigger, and the signed "
        "checkpoints outside the database; name the first event that differs."
    )

    def handle(self, *args, **options) -> None:
        report = audit_verify()
        for problem in report.checkpoint_problems:
            self.stderr.write(f"Checkpoint {problem['checkpoint']}: {problem['problem']}.")
        if not report.valid:
            where = f" at event {report.first_bad_seq}" if report.first_bad_seq else ""
            raise CommandError(
                f"Audit chain BROKEN{where}: {report.reason} ({report.events} events read)."
            )
        if report.checkpoint:
            anchored = (
                f"; signed checkpoints: {report.checkpoints}, the latest at event "
                f"{report.checkpoint['seq']} ({report.checkpoint['name']})"
            )
        else:
            anchored = "; no signed checkpoint yet (run `python manage.py audit_checkpoint`)"
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain valid: {report.events} events{anchored}.")
        )
