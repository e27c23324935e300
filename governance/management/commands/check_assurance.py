from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from governance.services.watch import assurance_watch


class Command(BaseCommand):
    help = (
        "Check every approved data flow's assurance now: suspend those whose DPIA, agreement, "
        "DSPT or ICO registration lapsed, and send the reminders due 90 and 30 days before."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--today",
            help="Check as on this day (YYYY-MM-DD) instead of today, e.g. to see what lapses.",
        )

    def handle(self, *args, today: str | None = None, **options) -> None:
        day = None
        if today:
            try:
                day = dt.date.fromisoformat(today)
            except ValueError:
                raise CommandError(
                    f"--today takes a date such as 2026-12-31, not {today!r}."
                ) from None
        report = assurance_watch(today=day)
        for line in report.lines():
            self.stdout.write(line)
