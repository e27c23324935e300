from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from phm_portal.audit import audit_checkpoint_take
from phm_portal.errors import DomainError
from phm_portal.lib.signing import SigningKeyMissing


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of the audit chain now, into PHM_AUDIT_CHECKPOINT_DIR "
        "(beat does it daily, and after each destruction)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reason", default="manual", help="Recorded in the checkpoint.")

    def handle(self, *args, reason: str, **options) -> None:
        try:
            name = audit_checkpoint_take(reason=reason[:200])
        except (DomainError, SigningKeyMissing) as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(
                f"The checkpoint cannot be written to PHM_AUDIT_CHECKPOINT_DIR: {exc}"
            ) from None
        self.stdout.write(self.style.SUCCESS(f"Audit checkpoint written: {name}"))
