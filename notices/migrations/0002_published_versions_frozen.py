"""Make published notice versions immutable in the database itself, whatever the caller.

A published row may only move to withdrawn (status and the withdrawn_* columns); a
withdrawn row never changes again. On PostgreSQL a published or withdrawn row cannot
be deleted either (TRUNCATE, which the test runner's flush uses, fires no row
trigger). SQLite gets the update rule only: Django's flush deletes rows one by one
there, and the services never delete a version.
"""

from django.db import migrations

FROZEN_COLUMNS = [
    "notice_id", "number", "sections", "facts", "changes", "sha256",
    "created_at", "created_by_id", "published_at", "published_by_id",
]
MESSAGE = "a published notice version never changes"

PG_FORWARD = [
    f"""
CREATE OR REPLACE FUNCTION notices_version_frozen() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
        MESSAGE = '{MESSAGE} (it cannot be deleted)';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status = 'draft' THEN
    RETURN NEW;
  END IF;
  IF {" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN_COLUMNS)}
     OR NOT (NEW.status = OLD.status OR (OLD.status = 'published' AND NEW.status = 'withdrawn'))
     OR (OLD.status = 'withdrawn' AND (NEW.withdrawn_at IS DISTINCT FROM OLD.withdrawn_at
         OR NEW.withdrawn_by_id IS DISTINCT FROM OLD.withdrawn_by_id
         OR NEW.withdrawn_reason IS DISTINCT FROM OLD.withdrawn_reason)) THEN
    RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation', MESSAGE = '{MESSAGE}';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql
""", """
CREATE TRIGGER notices_version_frozen
  BEFORE UPDATE OR DELETE ON notices_noticeversion
  FOR EACH ROW EXECUTE FUNCTION notices_version_frozen()
""",
]
PG_REVERSE = [
    "DROP TRIGGER IF EXISTS notices_version_frozen ON notices_noticeversion",
    "DROP FUNCTION IF EXISTS notices_version_frozen()",
]

SQLITE_FORWARD = f"""
CREATE TRIGGER notices_version_frozen
BEFORE UPDATE ON notices_noticeversion
WHEN OLD.status <> 'draft' AND (
  {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN_COLUMNS)}
  OR NOT (NEW.status = OLD.status OR (OLD.status = 'published' AND NEW.status = 'withdrawn'))
  OR (OLD.status = 'withdrawn' AND (NEW.withdrawn_at IS NOT OLD.withdrawn_at
      OR NEW.withdrawn_by_id IS NOT OLD.withdrawn_by_id
      OR NEW.withdrawn_reason IS NOT OLD.withdrawn_reason))
)
BEGIN
  SELECT RAISE(ABORT, '{MESSAGE}');
END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS notices_version_frozen;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_FORWARD:
            schema_editor.execute(statement)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_REVERSE:
            schema_editor.execute(statement)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("notices", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
