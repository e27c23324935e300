"""Insert many rows fast, from plain tuples: COPY on PostgreSQL, executemany on SQLite.

bulk_create builds a model instance and prepares every field of every row in Python,
which costs about 0.1 ms a row: 100,000 Type 1 events took a minute. The imports here
already hold validated, database-ready values, so they go straight to the database:
PostgreSQL's COPY (through a temporary table where conflicts are to be skipped), and
one prepared statement on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models, transaction

SMALL = 1000  # fewer rows than this go in plain INSERTs: COPY is for the bulk


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """Insert the rows (values in the order of columns, as the database takes them)."""
    if not rows:
        return
    if connection.vendor not in ("sqlite", "postgresql"):  # pragma: no cover - only these run
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows],
            batch_size=1000,
            ignore_conflicts=ignore_conflicts,
        )
        return
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    names = ", ".join(qn(model._meta.get_field(c).column) for c in columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) < SMALL:
            suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES {one}{suffix}", rows)  # noqa: S608
            return
        if connection.vendor == "sqlite":
            # SQLite runs one prepared single-row statement fastest; its default page
            # cache (2 MiB) is too small for the random keys of a 100,000-row index.
            cursor.execute("PRAGMA cache_size = -131072")
            cursor.executemany(f"{verb} INTO {table} ({names}) VALUES {one}", rows)  # noqa: S608
            return
        _copy_rows(cursor.cursor, table, names, rows, ignore_conflicts=ignore_conflicts)


def _copy_rows(cursor, table: str, names: str, rows: Sequence[tuple], *, ignore_conflicts: bool):
    """Load rows with PostgreSQL's COPY.

    Where conflicts are to be skipped, COPY straight in first (conflicts are rare: the
    callers hold the practice's lock) and, only if that hits one, again through a
    temporary table and INSERT ... ON CONFLICT DO NOTHING.
    """
    if not ignore_conflicts:
        _copy(cursor, table, names, rows)
        return
    try:
        with transaction.atomic():
            _copy(cursor, table, names, rows)
        return
    except connection.Database.IntegrityError:
        pass
    staging = "consent_bulk_load"
    cursor.execute(f"DROP TABLE IF EXISTS {staging}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    _copy(cursor, staging, names, rows)
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING"  # noqa: S608
    )
    cursor.execute(f"DROP TABLE {staging}")


def _copy(cursor, table: str, names: str, rows: Sequence[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608
        for row in rows:
            copy.write_row(row)


def db_datetime(value):
    """Return a datetime as the database column takes it."""
    return connection.ops.adapt_datetimefield_value(value)


def db_date(value):
    return connection.ops.adapt_datefield_value(value)
