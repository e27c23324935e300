"""Audit events are append-only: a database trigger refuses UPDATE and DELETE (and TRUNCATE).

The guard holds for every writer of the database, not only this code. Whoever owns the
tables can still drop it; the signed checkpoints kept outside the database
(phm_portal/audit_checkpoints.py) catch a history rewritten that way.

SQLite remakes a table to alter it, and the remade table has no triggers: a later
migration that alters phm_portal_auditevent must create them again (verify_audit reports
a missing guard).
"""

from django.db import migrations

MESSAGE = "audit events are append-only"
SQLITE_TRIGGERS = ("phm_audit_event_no_update", "phm_audit_event_no_delete")
POSTGRESQL_TRIGGERS = ("phm_audit_event_append_only", "phm_audit_event_no_truncate")

SQLITE_CREATE = [
    f"""CREATE TRIGGER phm_audit_event_no_update BEFORE UPDATE ON phm_portal_auditevent
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END""",
    f"""CREATE TRIGGER phm_audit_event_no_delete BEFORE DELETE ON phm_portal_auditevent
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS phm_audit_event_no_update",
    "DROP TRIGGER IF EXISTS phm_audit_event_no_delete",
]

# SQLSTATE 23000 (integrity constraint violation): Django raises IntegrityError, as it
# does for SQLite's RAISE(ABORT).
POSTGRESQL_CREATE = [
    f"""CREATE OR REPLACE FUNCTION phm_audit_event_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = '23000';
    END
    $$""",
    """CREATE TRIGGER phm_audit_event_append_only
    BEFORE UPDATE OR DELETE ON phm_portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION phm_audit_event_append_only()""",
    """CREATE TRIGGER phm_audit_event_no_truncate
    BEFORE TRUNCATE ON phm_portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION phm_audit_event_append_only()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS phm_audit_event_no_truncate ON phm_portal_auditevent",
    "DROP TRIGGER IF EXISTS phm_audit_event_append_only ON phm_portal_auditevent",
    "DROP FUNCTION IF EXISTS phm_audit_event_append_only()",
]

SQL = {
    "sqlite": (SQLITE_CREATE, SQLITE_DROP),
    "postgresql": (POSTGRESQL_CREATE, POSTGRESQL_DROP),
}


def _statements(schema_editor, index: int) -> list[str]:
    vendor = schema_editor.connection.vendor
    if vendor not in SQL:
        raise RuntimeError(
            f"The audit log's append-only trigger is written for SQLite and PostgreSQL, "
            f"not {vendor}: the portal supports those two databases only."
        )
    return SQL[vendor][index]


def guard(apps, schema_editor) -> None:
    for statement in _statements(schema_editor, 0):
        # No parameters: the PL/pgSQL body's % is RAISE's placeholder, not the driver's.
        schema_editor.execute(statement, params=None)


def unguard(apps, schema_editor) -> None:
    for statement in _statements(schema_editor, 1):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("phm_portal", "0002_audit_chain_head")]
    operations = [migrations.RunPython(guard, unguard)]
