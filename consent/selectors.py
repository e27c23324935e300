"""Reads of the consent app (the opt-out register itself is consent.register)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Count, F, Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from consent.models import (
    NHS_NUMBER_PURPOSE,
    REQUEST_PURPOSE,
    NationalOptOutCheck,
    NationalOptOutEntry,
    Patient,
    PracticeListSize,
    Registration,
    Type1Event,
    Type1Request,
)
from governance.models import Organisation, Programme
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib.crypto import blind_index, decrypt_field
from phm_portal.lib.nhs_number import InvalidNHSNumber, normalise_fast

CHUNK = 5000


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- patients ---------------------------------------------------------------------------
def patient_ids_by_index(indexes: Iterable[str]) -> dict[str, int]:
    """Return {blind index: patient id} for the indexes the portal knows.

    Plain SQL in chunks: building an ORM `__in` of thousands of values costs more than
    running it (this is on the path of 100,000-line imports).
    """
    indexes = list(indexes)
    found: dict[str, int] = {}
    table = connection.ops.quote_name(Patient._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One text parameter split on the server: far cheaper to send than an array.
            for chunk in _chunks(indexes, 50_000):
                cursor.execute(
                    f"SELECT nhs_index, id FROM {table} "  # noqa: S608 - no input in the SQL
                    "WHERE nhs_index = ANY(string_to_array(%s, ','))",
                    [",".join(chunk)],
                )
                found.update(cursor.fetchall())
            return found
        for chunk in _chunks(indexes):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT nhs_index, id FROM {table} WHERE nhs_index IN ({marks})",  # noqa: S608 - no input in the SQL
                list(chunk),
            )
            found.update(cursor.fetchall())
    return found


def patient_ids_after(last_id: int, indexes: set[str]) -> dict[str, int]:
    """Return {blind index: id} of patients added after last_id whose index is in the set."""
    found: dict[str, int] = {}
    for index, pk in (
        Patient.objects.filter(pk__gt=last_id)
        .values_list("nhs_index", "pk")
        .iterator(chunk_size=20_000)
    ):
        if index in indexes:
            found[index] = pk
    return found


def patient_indexes_registered_at(practice_ids: Sequence[int]) -> set[str]:
    """Return the blind indexes of the patients registered at any of these practices."""
    if not practice_ids:
        return set()
    return set(
        Registration.objects.filter(practice_id__in=list(practice_ids))
        .values_list("patient__nhs_index", flat=True)
        .iterator(chunk_size=20_000)
    )


def patient_by_nhs_number(nhs_number: str) -> Patient | None:
    """Return the patient with this (normalised) NHS number, if the portal knows them."""
    return Patient.objects.filter(nhs_index=blind_index(nhs_number)).first()


def nhs_number_of(patient: Patient) -> str:
    return decrypt_field(patient.nhs_number_encrypted, purpose=NHS_NUMBER_PURPOSE)


def nhs_numbers_of(patient_ids: Iterable[int]) -> dict[int, str]:
    """Return {patient id: NHS number}, decrypting in bulk."""
    ids = list(patient_ids)
    out: dict[int, str] = {}
    for chunk in _chunks(ids):
        for pk, token in Patient.objects.filter(pk__in=chunk).values_list(
            "pk", "nhs_number_encrypted"
        ):
            out[pk] = decrypt_field(token, purpose=NHS_NUMBER_PURPOSE)
    return out


# --- Type 1 -----------------------------------------------------------------------------------
def type1_latest_events(
    *, practice: Organisation, patient_ids: Sequence[int]
) -> dict[int, tuple[str, dt.date]]:
    """Return {patient id: (event, recorded_on)} of each patient's latest event at the practice."""
    latest: dict[int, tuple[str, dt.date]] = {}
    for chunk in _chunks(list(patient_ids)):
        rows = (
            Type1Event.objects.filter(practice=practice, patient_id__in=chunk)
            .order_by("patient_id", "recorded_on", "pk")
            .values_list("patient_id", "event", "recorded_on")
        )
        for pid, event, recorded_on in rows:
            latest[pid] = (event, recorded_on)
    return latest


def _latest_event_id() -> Subquery:
    return Subquery(
        Type1Event.objects.filter(practice=OuterRef("practice"), patient=OuterRef("patient"))
        .order_by("-recorded_on", "-pk")
        .values("pk")[:1]
    )


def type1_current(practice: Organisation, *, status: str | None = None) -> QuerySet[Type1Event]:
    """Return each patient's latest event at the practice: their current state.

    status "opted_out" keeps current dissents, "withdrawn" current withdrawals.
    """
    qs = (
        Type1Event.objects.filter(practice=practice)
        .annotate(latest_id=_latest_event_id())
        .filter(pk=F("latest_id"))
        .select_related("patient", "recorded_by", "code")
    )
    if status == "opted_out":
        qs = qs.filter(event=Type1Event.Event.DISSENT)
    elif status == "withdrawn":
        qs = qs.filter(event=Type1Event.Event.WITHDRAWAL)
    return qs.order_by("-recorded_on", "-pk")


def type1_history(
    practice: Organisation, patient_ids: Iterable[int]
) -> dict[int, list[Type1Event]]:
    """Return {patient id: events at the practice, oldest first}."""
    history: dict[int, list[Type1Event]] = {}
    events = (
        Type1Event.objects.filter(practice=practice, patient_id__in=list(patient_ids))
        .select_related("recorded_by", "code")
        .order_by("recorded_on", "pk")
    )
    for event in events:
        history.setdefault(event.patient_id, []).append(event)
    return history


# The current dissents this process last decrypted, by practices and the state of their
# events (see type1_current_dissent_numbers).
_dissents_read: dict[tuple, np.ndarray] = {}
_DISSENTS_READ_MAX = 4


def type1_current_dissent_numbers(practice_ids: Iterable[int]) -> np.ndarray:
    """Return the NHS numbers (int64, sorted, read-only) with a current dissent at any of
    these practices.

    Decrypted: they are few (they are matched against a job's numbers as integers). A
    worker loads them for every job; it decrypts them again only when the practices'
    events changed. Events are only ever added (the database refuses UPDATE, and DELETE
    outside tests' set-up), so their count and newest event say whether any was
    recorded since: one count on the practices' index (about 1 ms) instead of the query
    and a decryption per dissent (1,987 dissents: 11 ms a load).
    """
    practice_ids = sorted(set(practice_ids))
    if not practice_ids:
        return np.zeros(0, dtype=np.int64)
    events = Type1Event.objects.filter(practice_id__in=practice_ids)
    state = events.aggregate(count=Count("pk"), newest=Max("pk"))
    newest_at = events.filter(pk=state["newest"]).values_list("recorded_at", flat=True).first()
    key = (
        connection.settings_dict["NAME"],
        tuple(practice_ids),
        state["count"],
        state["newest"],
        newest_at,
    )
    numbers = _dissents_read.get(key)
    if numbers is not None:
        return numbers
    tokens = (
        events.annotate(latest_id=_latest_event_id())
        .filter(pk=F("latest_id"), event=Type1Event.Event.DISSENT)
        .values_list("patient__nhs_number_encrypted", flat=True)
    )
    numbers = np.array(
        sorted({int(decrypt_field(t, purpose=NHS_NUMBER_PURPOSE)) for t in tokens}), dtype=np.int64
    )
    numbers.setflags(write=False)
    if len(_dissents_read) >= _DISSENTS_READ_MAX:
        _dissents_read.pop(next(iter(_dissents_read)))
    _dissents_read[key] = numbers
    return numbers


@dataclass(frozen=True)
class RatePoint:
    month_end: dt.date
    opted_out: int
    list_size: int | None

    @property
    def rate(self) -> float | None:
        """The share of registered patients opted out, in per cent."""
        if not self.list_size:
            return None
        return 100.0 * self.opted_out / self.list_size


def _month_ends(first: dt.date, last: dt.date) -> list[dt.date]:
    ends = []
    year, month = first.year, first.month
    while True:
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        end = min(nxt - dt.timedelta(days=1), last)
        ends.append(end)
        if end >= last:
            return ends
        year, month = nxt.year, nxt.month


def type1_rate_series(practice: Organisation, *, months: int = 12) -> list[RatePoint]:
    """Return, for each of the last months, the patients opted out at its end and the rate.

    The rate divides by the practice's list size on that day (the latest recorded on or
    before it); without one the rate is left blank.
    """
    today = timezone.localdate()
    first = dt.date(today.year, today.month, 1)
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    events = list(
        Type1Event.objects.filter(practice=practice)
        .order_by("recorded_on", "pk")
        .values_list("patient_id", "event", "recorded_on")
    )
    sizes = list(
        PracticeListSize.objects.filter(practice=practice)
        .order_by("as_of")
        .values_list("as_of", "patients")
    )
    points = []
    state: dict[int, str] = {}
    i = 0
    for end in _month_ends(first, today):
        while i < len(events) and events[i][2] <= end:
            state[events[i][0]] = events[i][1]
            i += 1
        opted_out = sum(1 for e in state.values() if e == Type1Event.Event.DISSENT)
        size = None
        for as_of, patients in sizes:
            if as_of <= end:
                size = patients
        points.append(RatePoint(end, opted_out, size))
    return points


# --- requests ------------------------------------------------------------------------------
def type1_request_details(request: Type1Request) -> dict:
    """Return the patient's details of an online request, decrypted."""
    return json.loads(decrypt_field(request.details_encrypted, purpose=REQUEST_PURPOSE))


def type1_request_queue(practice: Organisation) -> QuerySet[Type1Request]:
    return Type1Request.objects.filter(
        practice=practice, status=Type1Request.Status.PENDING
    ).order_by("submitted_at")


# --- programmes and national checks ---------------------------------------------------------------
def programme_practice_ids(programme: Programme) -> list[int]:
    """Return the GP practices taking part in the programme, in any role."""
    return list(
        Organisation.objects.filter(
            participations__programme=programme, kind=Organisation.Kind.GP_PRACTICE
        )
        .distinct()
        .values_list("pk", flat=True)
    )


def programme_cohort_patient_ids(programme: Programme) -> list[int]:
    """Return the patients known at any of the programme's practices (its cohort)."""
    return sorted(
        set(
            Registration.objects.filter(
                practice_id__in=programme_practice_ids(programme)
            ).values_list("patient_id", flat=True)
        )
    )


def national_check_entry_ids_by_index(check: NationalOptOutCheck) -> dict[str, int]:
    """Return {blind index: entry id} of the check's submitted patients."""
    return dict(
        NationalOptOutEntry.objects.filter(check_run=check).values_list("patient__nhs_index", "pk")
    )


def national_check_submission(check: NationalOptOutCheck) -> list[str]:
    """Return the NHS numbers the check submits, in order (the file for the national service)."""
    if check.status == NationalOptOutCheck.Status.PURGED:
        raise NotAllowedNow("This check has expired and its patients were purged.")
    ids = NationalOptOutEntry.objects.filter(check_run=check).values_list("patient_id", flat=True)
    return sorted(nhs_numbers_of(ids).values())


def national_usable_checks(programme: Programme, *, today: dt.date | None = None):
    """Return the programme's complete checks that have not expired, newest first."""
    today = today or timezone.localdate()
    return NationalOptOutCheck.objects.filter(
        programme=programme, status=NationalOptOutCheck.Status.COMPLETE, expires_on__gt=today
    ).order_by("-checked_on", "-pk")


# --- NHS numbers asked about -------------------------------------------------------------
def normalise_many(values: Sequence[object], *, field: str = "nhs_numbers") -> list[str]:
    """Return every value as a 10-digit NHS number, or raise naming each bad item (0-based)."""
    out: list[str] = []
    bad: list[dict] = []
    seen: dict[object, str] = {}
    for i, value in enumerate(values):
        cached = seen.get(value) if isinstance(value, str) else None
        if cached is not None:
            out.append(cached)
            continue
        try:
            number = normalise_fast(value)  # type: ignore[arg-type]
        except InvalidNHSNumber as exc:
            bad.append({"index": i, "error": str(exc)})
            continue
        seen[value] = number
        out.append(number)
    if bad:
        shown = "; ".join(f"item {b['index']}: {b['error']}" for b in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise InvalidInput(
            f"{len(bad)} invalid NHS number{'s' if len(bad) != 1 else ''}: {shown}{more}",
            field=field,
            details=bad[:1000],
        )
    return out
