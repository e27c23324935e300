"""The test suite's ways past the audit log's append-only trigger, and no others.

Production has no bypass: the trigger refuses UPDATE and DELETE of audit events from every
writer, and only the table's owner can drop or disable it (as these helpers do, in plain
sight of `verify_audit`, which reports a missing trigger, and of the signed checkpoints).

1. `database_owner()`: the tests that play an attacker who owns the database lift the
   guard for a moment, tamper, and put it back.
2. `allow_test_flush()`: transactional tests (live_server, worker processes) empty every
   table when they end. On SQLite Django's flush is `DELETE FROM`, which the trigger
   refuses; on PostgreSQL it is TRUNCATE, which the statement trigger refuses. The flush
   of the test database lifts the guard inside its own transaction and restores it there,
   so the guard is back before the next test starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection as default_connection

TABLE = "phm_portal_auditevent"


def _suspend_and_restore(connection) -> tuple[list[str], list[str]]:
    """Return the SQL that lifts the guard on audit events, and the SQL that restores it."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [TABLE],
            )
            triggers = cursor.fetchall()
        return [f'DROP TRIGGER "{name}"' for name, _ in triggers], [sql for _, sql in triggers]
    if connection.vendor == "postgresql":
        return (
            [f"ALTER TABLE {TABLE} DISABLE TRIGGER USER"],
            [f"ALTER TABLE {TABLE} ENABLE TRIGGER USER"],
        )
    return [], []


@contextlib.contextmanager
def database_owner(connection=default_connection) -> Iterator[None]:
    """Lift the append-only guard for the block, as the database's owner can; then restore it."""
    suspend, restore = _suspend_and_restore(connection)
    with connection.cursor() as cursor:
        for sql in suspend:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in restore:
                cursor.execute(sql)


def allow_test_flush() -> None:
    """Make the test database's flush lift and restore the guard around its own statements."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush
    if getattr(original, "lifts_audit_guard", False):
        return

    def execute_sql_flush(self, sql_list):
        if any(TABLE in sql for sql in sql_list):
            suspend, restore = _suspend_and_restore(self.connection)
            sql_list = [*suspend, *sql_list, *restore]
        return original(self, sql_list)

    execute_sql_flush.lifts_audit_guard = True
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


def rewrite_and_rehash(seq: int, **changes) -> None:
    """Change event seq as a database owner would, hash it and every later event again,
    and move the chain head: the chain links as if nothing had happened."""
    from phm_portal.audit import GENESIS_HASH, stored_event_hash
    from phm_portal.models import AuditChainHead, AuditEvent

    with database_owner():
        AuditEvent.objects.filter(seq=seq).update(**changes)
        previous = AuditEvent.objects.get(seq=seq - 1).hash if seq > 1 else GENESIS_HASH
        for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
            digest = stored_event_hash(event, prev_hash=previous)
            AuditEvent.objects.filter(pk=event.pk).update(prev_hash=previous, hash=digest)
            previous = digest
        last = AuditEvent.objects.order_by("-seq").first()
        AuditChainHead.objects.update(last_seq=last.seq, last_hash=last.hash)
