"""Reads of the consent app, above all the opt-out register.

`opt_out_register_check` is the one place that answers "may this patient's data flow
on this data flow?". It is set-based: whatever the number of NHS numbers asked about,
it runs a fixed handful of queries and then works on sets in memory.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery
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
from consent.numbers import normalise_fast
from governance.models import DataFlow, Organisation, Programme
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib.crypto import blind_index, blind_indexer, decrypt_field
from phm_portal.lib.nhs_number import InvalidNHSNumber

CHUNK = 5000
REASON_TYPE1 = "type1"
REASON_NATIONAL = "national"
REASON_NATIONAL_UNCHECKED = "national_unchecked"
# The code of the refusal when no unexpired national check covers a programme (API "code").
NATIONAL_CHECK_MISSING = "national_check_missing"


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


def type1_current_dissent_indexes(practice_ids: Iterable[int]) -> set[str]:
    """Return the blind indexes of patients with a current dissent at any of these practices."""
    practice_ids = list(practice_ids)
    if not practice_ids:
        return set()
    return set(
        Type1Event.objects.filter(practice_id__in=practice_ids)
        .annotate(latest_id=_latest_event_id())
        .filter(pk=F("latest_id"), event=Type1Event.Event.DISSENT)
        .values_list("patient__nhs_index", flat=True)
    )


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


# --- the register -----------------------------------------------------------------------------------
@dataclass
class RegisterResult:
    """Who of the numbers asked about must be left out of the flow, and why."""

    excluded: list[tuple[str, list[str]]] = field(default_factory=list)
    allowed: int = 0
    type1_applies: bool = True
    national_applies: bool = True
    national_exemption: str = ""
    national_check_id: int | None = None
    national_checked_on: dt.date | None = None
    national_expires_on: dt.date | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {REASON_TYPE1: 0, REASON_NATIONAL: 0, REASON_NATIONAL_UNCHECKED: 0}
        for _, reasons in self.excluded:
            for reason in reasons:
                counts[reason] += 1
        return counts


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


@dataclass
class OptOutRegister:
    """The register of one data flow, loaded once, that answers many batches of numbers.

    A pseudonymisation job asks it about every distinct NHS number of an extract, block
    by block; loading the programme's opt-outs once keeps that fast.
    """

    result: RegisterResult
    type1: set[str]
    national: dict[str, bool] | None
    _type1_numbers: set[str] | None = None
    _type1_ids: np.ndarray | None = None

    def reasons(
        self, numbers: Iterable[str], *, indexes: dict[str, str] | None = None
    ) -> dict[str, list[str]]:
        """Return, for valid 10-digit numbers, the reasons each may not flow (none: absent).

        indexes: the numbers' blind indexes where the caller has them already.
        """
        if not self.type1 and self.national is None:
            return {}  # nobody can be left out: no need to index a single number
        if self.national is None:
            # Type 1 only: the few opted-out numbers, decrypted once, answer by plain
            # look-up, instead of a keyed blind index of every number asked about.
            opted_out = self._type1_plain()
            return {n: [REASON_TYPE1] for n in numbers if n in opted_out}
        index_of = indexes.__getitem__ if indexes is not None else blind_indexer()
        reasons_of: dict[str, list[str]] = {}
        for number in numbers:
            index = index_of(number)
            reasons = []
            if index in self.type1:
                reasons.append(REASON_TYPE1)
            if self.national is not None:
                opted_out = self.national.get(index)
                if opted_out is None:
                    reasons.append(REASON_NATIONAL_UNCHECKED)
                elif opted_out:
                    reasons.append(REASON_NATIONAL)
            if reasons:
                reasons_of[number] = reasons
        return reasons_of

    def unknown_reasons(self) -> list[str]:
        """Return the reasons given for a valid number the portal has never seen."""
        return [REASON_NATIONAL_UNCHECKED] if self.national is not None else []

    def reasons_as_seen_by(
        self, reasons_of: dict[str, list[str]], indexes: dict[str, str], practice_ids: Sequence[int]
    ) -> dict[str, list[str]]:
        """Return `reasons_of` with every patient not registered at these practices unknown.

        indexes: {number: blind index} of every number asked about. A number of anyone
        else gets exactly the answer of a number the portal has never seen: the same
        reasons (or none), so neither another practice's Type 1, nor the national
        opt-out, nor being in the programme's cohort shows through. The work is the same
        whatever the answers (every number indexed, the practices' patients always
        read), so neither does the time a call takes.
        """
        unknown = self.unknown_reasons()
        mine = patient_indexes_registered_at(practice_ids)
        out: dict[str, list[str]] = {}
        for number, index in indexes.items():
            reasons = reasons_of.get(number, []) if index in mine else unknown
            if reasons:
                out[number] = list(reasons)
        return out

    def reasons_by_number(self, numbers: np.ndarray) -> dict[int, list[str]]:
        """The same as `reasons`, for valid NHS numbers given as integers (a job's).

        Where only Type 1 applies, one vectorised membership test answers the batch.
        """
        if not self.type1 and self.national is None:
            return {}
        if self.national is None:
            if self._type1_ids is None:
                self._type1_ids = np.array(sorted(int(n) for n in self._type1_plain()), np.int64)
            if not len(self._type1_ids):
                return {}
            # A sorted look-up of each number: np.isin would sort both arrays every batch.
            ids = self._type1_ids
            at = np.minimum(np.searchsorted(ids, numbers), len(ids) - 1)
            hits = numbers[ids[at] == numbers]
            return {n: [REASON_TYPE1] for n in hits.tolist()}
        reasons = self.reasons(f"{n:010d}" for n in numbers.tolist())
        return {int(n): r for n, r in reasons.items()}

    def _type1_plain(self) -> set[str]:
        if self._type1_numbers is None:
            indexes = sorted(self.type1)
            numbers: set[str] = set()
            for chunk in _chunks(indexes):
                numbers.update(
                    decrypt_field(token, purpose=NHS_NUMBER_PURPOSE)
                    for token in Patient.objects.filter(nhs_index__in=chunk).values_list(
                        "nhs_number_encrypted", flat=True
                    )
                )
            self._type1_numbers = numbers
        return self._type1_numbers


def opt_out_register_for(*, data_flow: DataFlow) -> OptOutRegister:
    """Load the register of a data flow: who may not flow on it, and why.

    1. The flow must be approved (409 otherwise): no data moves on any other.
    2. Type 1 (where the programme applies it): a current dissent at any GP practice
       taking part in the programme leaves the patient out, of every flow of it.
    3. National data opt-out (where the programme applies it): the newest unexpired
       check that submitted the patient decides; a patient whom no unexpired check
       covers is left out as "national_unchecked"; with no unexpired check at all the
       question is refused (409) until a new check is imported. Where the programme is
       exempt, the exemption is returned and nobody is left out on this ground.
    """
    if not data_flow.is_approved:
        raise NotAllowedNow(
            f"The data flow is {data_flow.get_status_display().lower()}: no data moves on a "
            "flow that is not approved."
        )
    programme = data_flow.programme
    result = RegisterResult(
        type1_applies=programme.type1_opt_out_applies,
        national_applies=programme.national_opt_out_applies,
        national_exemption=""
        if programme.national_opt_out_applies
        else programme.national_opt_out_exemption,
    )
    national: dict[str, bool] | None = None
    if programme.national_opt_out_applies:
        checks = list(national_usable_checks(programme))
        if not checks:
            raise NotAllowedNow(
                f"The national data opt-out applies to {programme.name} and it has no unexpired "
                "national check. Start a national data opt-out check of the programme (the "
                "National checks page, or POST /api/v1/national-opt-outs/checks/ with "
                f'{{"programme": "{programme.slug}"}}) and import the national service\'s reply: '
                "data flows once the check is complete.",
                code=NATIONAL_CHECK_MISSING,
            )
        newest = checks[0]
        result.national_check_id = newest.pk
        result.national_checked_on = newest.checked_on
        result.national_expires_on = newest.expires_on
        national = {}
        # Oldest first, so that a newer check's answer overwrites an older one's.
        for check in reversed(checks):
            national.update(
                NationalOptOutEntry.objects.filter(check_run=check).values_list(
                    "patient__nhs_index", "opted_out"
                )
            )
    type1: set[str] = set()
    if programme.type1_opt_out_applies:
        type1 = type1_current_dissent_indexes(programme_practice_ids(programme))
    return OptOutRegister(result, type1, national)


def opt_out_register_check(
    *,
    data_flow: DataFlow,
    nhs_numbers: Sequence[object],
    practice_ids: Sequence[int] | None = None,
) -> RegisterResult:
    """Return which of these patients' data may not flow on this data flow, and why.

    With practice_ids (permissions.register_practice_ids_for), only patients registered
    at those practices are answered truly; every other number as an unknown one.
    """
    register = opt_out_register_for(data_flow=data_flow)
    numbers = normalise_many(nhs_numbers)
    distinct = set(numbers)
    if practice_ids is None:
        reasons_of = register.reasons(distinct)
    else:
        index_of = blind_indexer()
        indexes = {number: index_of(number) for number in distinct}
        reasons_of = register.reasons(distinct, indexes=indexes)
        reasons_of = register.reasons_as_seen_by(reasons_of, indexes, practice_ids)
    result = register.result
    result.excluded = sorted(reasons_of.items())
    result.allowed = sum(1 for n in numbers if n not in reasons_of)
    return result
