"""Make the database itself refuse to change Type 1 events.

PostgreSQL refuses UPDATE and DELETE of a row (TRUNCATE, which only the owner of the
tables may run, is left to test set-up and to operators). SQLite refuses UPDATE; it
keeps DELETE so that Django's test flush, which deletes rows there, still works.
"""

from django.db import migrations

TABLE = "consent_type1event"

PG_FORWARD = [
    """
CREATE OR REPLACE FUNCTION consent_type1event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'Type 1 events are append-only: ' || TG_OP || ' refused',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql
""",
    f"""CREATE TRIGGER consent_type1event_no_update BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION consent_type1event_append_only()""",
    f"""CREATE TRIGGER consent_type1event_no_delete BEFORE DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION consent_type1event_append_only()""",
]
PG_BACKWARD = [
    f"DROP TRIGGER IF EXISTS consent_type1event_no_update ON {TABLE}",
    f"DROP TRIGGER IF EXISTS consent_type1event_no_delete ON {TABLE}",
    "DROP FUNCTION IF EXISTS consent_type1event_append_only()",
]
SQLITE_FORWARD = f"""
CREATE TRIGGER consent_type1event_no_update BEFORE UPDATE ON {TABLE}
BEGIN
    SELECT RAISE(ABORT, 'Type 1 events are append-only: UPDATE refused');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS consent_type1event_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_FORWARD:
            schema_editor.execute(statement)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_BACKWARD:
            schema_editor.execute(statement)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_opt_out_codes")]

    operations = [migrations.RunPython(forward, backward)]
