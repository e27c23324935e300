"""Every write of the consent app: plain functions that validate, save and audit.

NHS numbers enter here and only here; they are validated (Modulus 11), looked up by
their keyed blind index and stored encrypted. Audit events never carry a number in
the clear: they name a count or the first 12 hex digits of the blind index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from consent import mesh, register, selectors
from consent.bulk import db_date, db_datetime, insert_rows
from consent.files import (
    LineError,
    csv_records,
    decode_text,
    national_local_id,
    national_reply_kind,
    number_lines,
    parse_date,
)
from consent.models import (
    NHS_NUMBER_PURPOSE,
    REQUEST_PURPOSE,
    MeshInboxMessage,
    NationalOptOutCheck,
    NationalOptOutEntry,
    OptOutCode,
    Organisation,
    Patient,
    PracticeListSize,
    Registration,
    RegistrationFromExtract,
    Type1Event,
    Type1Import,
    Type1Request,
)
from consent.register_quota import (
    RegisterQuotaExceeded,
    register_quota_give_back,
    register_quota_take,
)
from governance.models import DataFlow, Programme, User
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib.crypto import blind_indexer, encrypt_field, field_encryptor
from phm_portal.lib.nhs_number import InvalidNHSNumber, normalise, normalise_fast

BATCH = 5000
log = logging.getLogger(__name__)


def _chunks(items: Sequence, size: int = BATCH) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def nhs_number_clean(value: object, *, field: str = "nhs_number") -> str:
    """Return the NHS number as 10 digits, or raise InvalidInput naming the field."""
    if value is None or value == "":
        raise InvalidInput("Enter the NHS number.", field=field)
    try:
        return normalise(str(value))
    except InvalidNHSNumber as exc:
        raise InvalidInput(str(exc), field=field) from None


def _lock_practice(practice: Organisation) -> None:
    """Serialise the writes of one practice's opt-outs (a row lock on PostgreSQL)."""
    Organisation.objects.select_for_update().filter(pk=practice.pk).first()


# --- patients ------------------------------------------------------------------------
def patients_get_or_create(
    *,
    nhs_numbers: Iterable[str],
    indexes: dict[str, str] | None = None,
    known: dict[str, int] | None = None,
) -> dict[str, int]:
    """Return {normalised NHS number: patient id} for valid numbers, adding unknown ones.

    Set-based: one blind index per distinct number (or the caller's `indexes`), one
    query per 5,000 numbers unless the caller already looked them up (`known`), and
    only numbers the portal does not know yet are encrypted and inserted.
    """
    index_of = blind_indexer()
    if indexes is None:
        by_index = {index_of(n): n for n in set(nhs_numbers)}
    else:
        by_index = {indexes[n]: n for n in set(nhs_numbers)}
    if known is None:
        found = selectors.patient_ids_by_index(by_index.keys())
    else:
        found = {i: known[i] for i in by_index if i in known}
    missing = [i for i in by_index if i not in found]
    if missing:
        encrypt = field_encryptor(purpose=NHS_NUMBER_PURPOSE)
        now = db_datetime(timezone.now())
        last_id = Patient.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        insert_rows(
            Patient,
            ("nhs_index", "nhs_number_encrypted", "created_at"),
            [(i, encrypt(by_index[i]), now) for i in missing],
            ignore_conflicts=True,  # another transaction may have added the same patient
        )
        # The new rows come after last_id; one that another transaction added first is not.
        found.update(selectors.patient_ids_after(last_id, set(missing)))
        still = [i for i in missing if i not in found]
        if still:
            found.update(selectors.patient_ids_by_index(still))
    return {number: found[index] for index, number in by_index.items()}


def patients_register(
    *, practice: Organisation, patient_ids: Iterable[int], programme: Programme | None = None
) -> None:
    """Record that these patients are known at the practice (part of its cohort).

    With a programme, they were learned from its extract: that source is kept, and the
    entry goes when the programme's data is destroyed unless something else taught it.
    """
    ids = sorted(set(patient_ids))
    now = db_datetime(timezone.now())
    insert_rows(
        Registration,
        ("practice", "patient", "first_seen", "elsewhere"),
        [(practice.pk, pid, now, programme is None) for pid in ids],
        ignore_conflicts=True,
    )
    rows = Registration.objects.filter(practice=practice)
    if programme is None:
        for chunk in _chunks(ids):
            rows.filter(patient_id__in=chunk, elsewhere=False).update(elsewhere=True)
        return
    for chunk in _chunks(ids):
        registration_ids = rows.filter(patient_id__in=chunk).values_list("pk", flat=True)
        insert_rows(
            RegistrationFromExtract,
            ("registration", "programme"),
            [(rid, programme.pk) for rid in registration_ids],
            ignore_conflicts=True,
        )


def patients_note_at_practice(
    *,
    actor: User | str | None,
    practice: Organisation,
    nhs_numbers: Iterable[str],
    programme: Programme | None = None,
) -> int:
    """Add NHS numbers to the practice's cohort (e.g. from an extract); return how many.

    Every number is validated (400 naming the bad items); the cohort is what a national
    data opt-out check of the practice's programmes submits. With `programme`, they come
    from that programme's extract (destroyed with its data).
    """
    numbers = selectors.normalise_many(list(nhs_numbers))
    with transaction.atomic():
        _lock_practice(practice)
        ids = patients_get_or_create(nhs_numbers=numbers)
        patients_register(practice=practice, patient_ids=ids.values(), programme=programme)
        audit_log(
            actor=actor,
            action="consent.patients_noted",
            obj=practice,
            details={
                "numbers": len(ids),
                **({"from_extract_of": programme.slug} if programme else {}),
            },
        )
    return len(ids)


# --- Type 1 opt-outs -------------------------------------------------------------------
def _code_for(kind: str) -> OptOutCode:
    code = OptOutCode.objects.filter(kind=kind, preferred=True).first()
    if code is None:  # the data migration seeds them; a missing one is a broken install
        raise NotAllowedNow(f"No clinical code of kind {kind} is configured.")
    return code


def _clean_event_fields(*, event: object, method: object, recorded_on: object) -> dt.date:
    if event not in Type1Event.Event.values:
        raise InvalidInput("The event is dissent or withdrawal.", field="event")
    allowed_methods = [m for m in Type1Event.Method.values if m != Type1Event.Method.NOT_RECORDED]
    if method not in allowed_methods:
        raise InvalidInput(f"The method is one of {', '.join(allowed_methods)}.", field="method")
    if isinstance(recorded_on, str):
        try:
            recorded_on = parse_date(recorded_on)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="recorded_on") from None
    if not isinstance(recorded_on, dt.date):
        raise InvalidInput("Enter the day the patient asked.", field="recorded_on")
    if recorded_on > timezone.localdate():
        raise InvalidInput(
            "The day the patient asked cannot be in the future.", field="recorded_on"
        )
    return recorded_on


def _refusal(
    *, event: str, latest: tuple[str, dt.date] | None, recorded_on: dt.date
) -> tuple[str, str] | None:
    """Return (what is wrong, why) if this event cannot follow the patient's latest one.

    What is wrong is "state" (409: e.g. a withdrawal with no current opt-out) or
    "recorded_on" (400: dated before the last event, so it could never be the latest).
    """
    if event == Type1Event.Event.WITHDRAWAL and (latest is None or latest[0] != "dissent"):
        return "state", "there is no current opt-out to withdraw"
    if event == Type1Event.Event.DISSENT and latest is not None and latest[0] == "dissent":
        return "state", f"the patient has been opted out since {latest[1].isoformat()}"
    if latest is not None and recorded_on < latest[1]:
        return "recorded_on", (
            f"the date is before the patient's last recorded event ({latest[1].isoformat()}); "
            "events are recorded in the order patients asked"
        )
    return None


def type1_opt_out_record(
    *,
    actor: User,
    practice: Organisation,
    nhs_number: object,
    event: object,
    method: object,
    recorded_on: object,
    source_request: Type1Request | None = None,
) -> Type1Event:
    """Record one dissent or withdrawal of dissent at the practice, and log it.

    A withdrawal needs a current dissent, a dissent needs none (409 otherwise).
    """
    number = nhs_number_clean(nhs_number)
    recorded_on = _clean_event_fields(event=event, method=method, recorded_on=recorded_on)
    code = _code_for(str(event))
    with transaction.atomic():
        _lock_practice(practice)
        patient_id = patients_get_or_create(nhs_numbers=[number])[number]
        latest = selectors.type1_latest_events(practice=practice, patient_ids=[patient_id])
        refusal = _refusal(event=str(event), latest=latest.get(patient_id), recorded_on=recorded_on)
        if refusal is not None:
            what, why = refusal
            message = why[0].upper() + why[1:] + "."
            if what == "recorded_on":
                raise InvalidInput(message, field="recorded_on")
            raise NotAllowedNow(message)
        record = Type1Event(
            practice=practice,
            patient_id=patient_id,
            event=event,
            code=code,
            method=method,
            recorded_on=recorded_on,
            recorded_by=actor,
            source_request=source_request,
        )
        record.full_clean(exclude=["patient", "practice", "code", "recorded_by"])
        record.save()
        patients_register(practice=practice, patient_ids=[patient_id])
        audit_log(
            actor=actor,
            action=f"type1.{event}_recorded",
            obj=record,
            details={
                "practice": practice.ods_code,
                "patient": record.patient.index_prefix,
                "code": code.snomed_ct,
                "method": method,
                "recorded_on": recorded_on.isoformat(),
            },
        )
    return record


@dataclass
class ImportReport:
    lines: int = 0
    accepted: int = 0
    rejected: list[LineError] = field(default_factory=list)
    stored: bool = False
    import_id: int | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.import_id,
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": [e.as_dict() for e in self.rejected],
            "stored": self.stored,
        }


_REQUIRED_COLUMNS = ("nhs_number", "event", "recorded_on")


def _event_names() -> dict[str, str]:
    """Return every way a file may name an event (words and the codes) -> kind."""
    names = {"dissent": "dissent", "withdrawal": "withdrawal"}
    for code in OptOutCode.objects.all():
        for value in (code.snomed_ct, code.read_v2, code.read_v2.rstrip("."), code.ctv3):
            if value:
                names[value.lower()] = code.kind
    return names


def type1_import(
    *,
    actor: User,
    practice: Organisation,
    data: bytes,
    filename: str = "",
    partial: bool = False,
) -> ImportReport:
    """Import a practice system's CSV of Type 1 events (`nhs_number,event,recorded_on`).

    1. Read every line (UTF-8 with or without BOM, CRLF or LF, quoted fields) and
       check each: NHS number, event (a word or a code of the reference table), date,
       the optional method; then the order of each patient's events against what is
       stored and the file's earlier lines.
    2. With any bad line and no `partial`, store nothing and report every bad line.
    3. Otherwise store the good lines in bulk: one blind index per distinct number,
       new patients encrypted and inserted together, events in multi-row INSERTs.
    """
    text = decode_text(data, field="file")
    records = csv_records(text)
    header = next(records, None)
    if header is None:
        raise InvalidInput("The file is empty.", field="file")
    header_line, header_row = header
    columns = [c.strip().lower() for c in header_row]
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InvalidInput(
            f"Line {header_line}: the header must name nhs_number, event and recorded_on "
            f"(missing {', '.join(missing)}).",
            field="file",
            details=[{"line": header_line, "error": f"missing column {', '.join(missing)}"}],
        )
    pos = {c: columns.index(c) for c in (*_REQUIRED_COLUMNS, "method") if c in columns}
    width = max(pos.values()) + 1
    names = _event_names()
    methods = set(Type1Event.Method.values) - {Type1Event.Method.NOT_RECORDED}
    today = timezone.localdate()
    report = ImportReport()
    parsed: list[tuple[int, str, str, dt.date, str]] = []
    dates: dict[str, dt.date] = {}
    for line, row in records:
        report.lines += 1
        if len(row) < width:
            report.rejected.append(
                LineError(line, f"expected {len(columns)} fields, found {len(row)}")
            )
            continue
        try:
            number = normalise_fast(row[pos["nhs_number"]])
        except InvalidNHSNumber as exc:
            report.rejected.append(LineError(line, f"nhs_number: {exc}"))
            continue
        kind = names.get(row[pos["event"]].strip().lower())
        if kind is None:
            report.rejected.append(
                LineError(
                    line,
                    f"event: {row[pos['event']]!r} is not dissent, withdrawal or one of their codes",
                )
            )
            continue
        raw_date = row[pos["recorded_on"]]
        recorded_on = dates.get(raw_date)
        if recorded_on is None:
            try:
                recorded_on = dates[raw_date] = parse_date(raw_date)
            except ValueError as exc:
                report.rejected.append(LineError(line, f"recorded_on: {exc}"))
                continue
        if recorded_on > today:
            report.rejected.append(LineError(line, "recorded_on: the date is in the future"))
            continue
        method = Type1Event.Method.NOT_RECORDED
        if "method" in pos and row[pos["method"]].strip():
            method = row[pos["method"]].strip().lower()
            if method not in methods:
                report.rejected.append(
                    LineError(
                        line, f"method: {method!r} is not one of {', '.join(sorted(methods))}"
                    )
                )
                continue
        parsed.append((line, number, kind, recorded_on, method))
    if report.lines == 0:
        raise InvalidInput("The file has a header but no lines.", field="file")

    index_of = blind_indexer()
    index_by_number = {n: index_of(n) for n in {p[1] for p in parsed}}
    with transaction.atomic():
        _lock_practice(practice)
        known = selectors.patient_ids_by_index(index_by_number.values())
        stored_latest = selectors.type1_latest_events(
            practice=practice, patient_ids=list(known.values())
        )
        state: dict[str, tuple[str, dt.date] | None] = {
            index: stored_latest.get(pid) for index, pid in known.items()
        }
        good: list[tuple[int, str, str, dt.date, str]] = []
        for line, number, kind, recorded_on, method in parsed:
            index = index_by_number[number]
            refusal = _refusal(event=kind, latest=state.get(index), recorded_on=recorded_on)
            if refusal is not None:
                report.rejected.append(LineError(line, refusal[1]))
                continue
            state[index] = (kind, recorded_on)
            good.append((line, number, kind, recorded_on, method))
        report.rejected.sort(key=lambda e: e.line)
        if report.rejected and not partial:
            audit_log(
                actor=actor,
                action="type1.import_refused",
                obj=practice,
                details={"lines": report.lines, "rejected": len(report.rejected)},
            )
            return report
        codes = {kind: _code_for(kind) for kind in ("dissent", "withdrawal")}
        batch = Type1Import.objects.create(
            practice=practice,
            uploaded_by=actor,
            filename=filename[:255],
            sha256=hashlib.sha256(data).hexdigest(),
            lines=report.lines,
            accepted=len(good),
            rejected=[e.as_dict() for e in report.rejected],
            partial=partial,
        )
        ids = patients_get_or_create(
            nhs_numbers=[g[1] for g in good], indexes=index_by_number, known=known
        )
        now = db_datetime(timezone.now())
        code_ids = {kind: code.pk for kind, code in codes.items()}
        db_dates = {d: db_date(d) for d in {g[3] for g in good}}
        insert_rows(
            Type1Event,
            ("practice", "patient", "event", "code", "method", "recorded_on", "recorded_at",
             "recorded_by", "source_import"),
            [
                (practice.pk, ids[number], kind, code_ids[kind], method,
                 db_dates[recorded_on], now, actor.pk, batch.pk)
                for _, number, kind, recorded_on, method in good
            ],
        )  # fmt: skip
        patients_register(practice=practice, patient_ids=ids.values())
        report.accepted = len(good)
        report.stored = True
        report.import_id = batch.pk
        audit_log(
            actor=actor,
            action="type1.imported",
            obj=batch,
            details={
                "practice": practice.ods_code,
                "lines": report.lines,
                "accepted": report.accepted,
                "rejected": len(report.rejected),
                "partial": partial,
                "sha256": batch.sha256,
            },
        )
    return report


def practice_list_size_record(
    *, actor: User, practice: Organisation, as_of: dt.date, patients: int
) -> PracticeListSize:
    """Record how many patients the practice had on a day (the opt-out rate's denominator)."""
    if patients is None or patients < 1:
        raise InvalidInput("Enter how many patients are registered (at least 1).", field="patients")
    if as_of > timezone.localdate():
        raise InvalidInput("The date cannot be in the future.", field="as_of")
    with transaction.atomic():
        row, _ = PracticeListSize.objects.update_or_create(
            practice=practice,
            as_of=as_of,
            defaults={"patients": patients, "recorded_by": actor},
        )
        audit_log(
            actor=actor,
            action="type1.list_size_recorded",
            obj=practice,
            details={"as_of": as_of.isoformat(), "patients": patients},
        )
    return row


def type1_export_logged(*, actor: User, practice: Organisation, what: str, rows: int) -> None:
    """Log that a practice's opt-outs left the portal as a file (CSV or FHIR)."""
    audit_log(
        actor=actor,
        action="type1.exported",
        obj=practice,
        details={"format": what, "patients": rows},
    )


# --- patients' online requests -----------------------------------------------------------
_REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U


def _new_reference() -> str:
    body = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"T1-{body[:4]}-{body[4:]}"


def type1_request_rate_limited(*, client: str) -> bool:
    """Count one request from the client; return True once it is over the hourly limit.

    The client (its address) is hashed with the site secret before it becomes a cache
    key, so the cache holds no address.
    """
    digest = hashlib.sha256(f"{settings.SECRET_KEY}|{client}".encode()).hexdigest()[:32]
    hour = timezone.now().strftime("%Y%m%d%H")
    key = f"consent:type1-request:{digest}:{hour}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > settings.PHM_OPT_OUT_REQUESTS_PER_HOUR


def type1_request_submit(
    *,
    practice: Organisation,
    name: str,
    date_of_birth: dt.date,
    contact: str,
    nhs_number: str = "",
) -> Type1Request:
    """Store a patient's request encrypted, in the practice's queue; never applied here."""
    if practice.kind != Organisation.Kind.GP_PRACTICE:
        raise InvalidInput("Only a GP practice takes Type 1 opt-out requests.")
    name = (name or "").strip()
    contact = (contact or "").strip()
    if not name:
        raise InvalidInput("Enter your full name.", field="name")
    if not contact:
        raise InvalidInput(
            "Enter an email address, phone number or postal address.", field="contact"
        )
    today = timezone.localdate()
    # January 1st, not today's day: 130 years before a 29 February has no 29 February.
    if date_of_birth > today or date_of_birth < dt.date(today.year - 130, 1, 1):
        raise InvalidInput("Enter a real date of birth.", field="date_of_birth")
    number = nhs_number_clean(nhs_number) if (nhs_number or "").strip() else ""
    details = json.dumps(
        {
            "name": name,
            "date_of_birth": date_of_birth.isoformat(),
            "nhs_number": number,
            "contact": contact,
        }
    )
    encrypted = encrypt_field(details, purpose=REQUEST_PURPOSE)
    for _ in range(5):
        try:
            with transaction.atomic():
                request = Type1Request.objects.create(
                    practice=practice, reference=_new_reference(), details_encrypted=encrypted
                )
                audit_log(
                    actor="public",
                    action="type1.request_submitted",
                    obj=request,
                    details={"practice": practice.ods_code, "nhs_number_given": bool(number)},
                )
            return request
        except IntegrityError:  # the random reference was taken: draw again
            continue
    raise NotAllowedNow("Could not issue a reference number; please try again.")


def type1_request_record(
    *, actor: User, request: Type1Request, nhs_number: object, recorded_on: object
) -> Type1Event:
    """Record the dissent a patient asked for online, after the practice verified them."""
    with transaction.atomic():
        claimed = Type1Request.objects.filter(
            pk=request.pk, status=Type1Request.Status.PENDING
        ).update(status=Type1Request.Status.RECORDED, decided_by=actor, decided_at=timezone.now())
        if claimed != 1:
            raise NotAllowedNow("This request has already been dealt with.")
        request.refresh_from_db()
        event = type1_opt_out_record(
            actor=actor,
            practice=request.practice,
            nhs_number=nhs_number,
            event=Type1Event.Event.DISSENT,
            method=Type1Event.Method.ONLINE,
            recorded_on=recorded_on,
            source_request=request,
        )
        audit_log(
            actor=actor,
            action="type1.request_recorded",
            obj=request,
            details={"practice": request.practice.ods_code, "event": event.pk},
        )
    return event


def type1_request_decline(*, actor: User, request: Type1Request, reason: str) -> Type1Request:
    """Decline a patient's request (e.g. who asked could not be verified), saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the request is declined.", field="reason")
    with transaction.atomic():
        claimed = Type1Request.objects.filter(
            pk=request.pk, status=Type1Request.Status.PENDING
        ).update(
            status=Type1Request.Status.DECLINED,
            decided_by=actor,
            decided_at=timezone.now(),
            decline_reason=reason,
        )
        if claimed != 1:
            raise NotAllowedNow("This request has already been dealt with.")
        request.refresh_from_db()
        audit_log(
            actor=actor,
            action="type1.request_declined",
            obj=request,
            details={"practice": request.practice.ods_code},
        )
    return request


# --- national data opt-outs -------------------------------------------------------------------
def _clean_checked_on(checked_on: object) -> tuple[dt.date, dt.date]:
    """Return (checked_on, expires_on) for the day the national service ran the check."""
    if isinstance(checked_on, str):
        try:
            checked_on = parse_date(checked_on)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="checked_on") from None
    if checked_on is None or checked_on == "":
        checked_on = timezone.localdate()
    if not isinstance(checked_on, dt.date):
        raise InvalidInput(
            "Enter the day the national service checked the file.", field="checked_on"
        )
    today = timezone.localdate()
    if checked_on > today:
        raise InvalidInput("The check cannot have run in the future.", field="checked_on")
    expires_on = checked_on + dt.timedelta(days=settings.PHM_NATIONAL_OPT_OUT_DAYS)
    if expires_on <= today:
        raise InvalidInput(
            f"A check from {checked_on.isoformat()} has already expired "
            f"(results are used for {settings.PHM_NATIONAL_OPT_OUT_DAYS} days): run a new one.",
            field="checked_on",
        )
    return checked_on, expires_on


def _next_local_id(today: dt.date) -> str | None:
    """Return the next name of a check's file in this month, or None without a mailbox."""
    mailbox = settings.PHM_MESH_MAILBOX
    if not mailbox:
        return None
    month = f"{today:%m%y}"
    used = NationalOptOutCheck.objects.filter(
        local_id__regex=rf"^{mailbox}-[0-9]{{2}}{month}-[0-9]{{4}}$"
    ).values_list("local_id", flat=True)
    sequence = max((int(name[-4:]) for name in used), default=0) + 1
    return national_local_id(mailbox, today, sequence)


def national_check_start(
    *, actor: User, programme: Programme, demo: bool = False
) -> NationalOptOutCheck:
    """Snapshot the programme's cohort as a new check awaiting the national service's answer.

    The cohort is every NHS number the portal knows at the GP practices taking part in
    the programme (their Type 1 events, recorded requests, and numbers noted from extracts).
    The check's file is named as the service expects (<mailbox>-<DDMMYY>-<NNNN>) where the
    portal's MESH mailbox is known; with MESH configured it is sent at once by a worker.
    """
    patient_ids = selectors.programme_cohort_patient_ids(programme)
    if not patient_ids:
        raise NotAllowedNow(
            "The portal knows no patient of this programme's practices yet: there is nothing to check."
        )
    over_mesh = mesh.configured() and not demo
    with transaction.atomic():
        for attempt in range(5):
            try:
                with transaction.atomic():  # a savepoint: two checks started at once
                    check = NationalOptOutCheck.objects.create(
                        programme=programme,
                        created_by=actor,
                        submitted=len(patient_ids),
                        local_id=_next_local_id(timezone.localdate()),
                        transport=NationalOptOutCheck.Transport.MESH
                        if over_mesh
                        else NationalOptOutCheck.Transport.MANUAL,
                        demo=demo,
                    )
                break
            except IntegrityError:
                if attempt == 4:
                    raise
        insert_rows(
            NationalOptOutEntry, ("check_run", "patient"), [(check.pk, pid) for pid in patient_ids]
        )
        audit_log(
            actor=actor,
            action="national_opt_out.check_started",
            obj=check,
            details={
                "programme": programme.slug,
                "submitted": len(patient_ids),
                "local_id": check.local_id,
                "transport": check.transport,
                "demo": demo,
            },
        )
        if over_mesh:
            from consent.tasks import national_check_send  # noqa: PLC0415 - tasks import services

            transaction.on_commit(lambda: national_check_send.delay(check.pk))
    return check


def national_check_submission_export(*, actor: User, check: NationalOptOutCheck) -> list[str]:
    """Return the NHS numbers to send to the national service for the check, and log it."""
    numbers = selectors.national_check_submission(check)
    audit_log(
        actor=actor,
        action="national_opt_out.submission_exported",
        obj=check,
        details={"programme": check.programme.slug, "numbers": len(numbers)},
    )
    return numbers


def _returned_indexes(text: str, *, submitted: set[str]) -> tuple[set[str], list[LineError]]:
    good, bad = number_lines(text)
    index_of = blind_indexer()
    returned: set[str] = set()
    for line, number in good:
        index = index_of(number)
        if index not in submitted:
            bad.append(LineError(line, "this NHS number was not in the submitted file"))
            continue
        returned.add(index)
    bad.sort(key=lambda e: e.line)
    return returned, bad


def _bad_file(field: str, bad: list[LineError]) -> InvalidInput:
    first = ", ".join(f"line {e.line}: {e.error}" for e in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return InvalidInput(
        f"{len(bad)} bad line{'s' if len(bad) != 1 else ''}: {first}{more}.",
        field=field,
        details=[{"file": field, **e.as_dict()} for e in bad],
    )


def mesh_message_record(
    received: mesh.Received | None,
    *,
    check: NationalOptOutCheck | None,
    kind: str,
    detail: str = "",
) -> None:
    """Record a MESH message as read, in the transaction of what it changed (exactly once)."""
    if received is None:
        return
    MeshInboxMessage.objects.create(
        message_id=received.message_id,
        check_run=check,
        kind=kind,
        local_id=received.local_id[:200],
        subject=received.subject[:200],
        detail=detail,
    )


def national_check_fail(
    *,
    actor: User | None,
    check: NationalOptOutCheck,
    words: str,
    received: mesh.Received | None = None,
) -> NationalOptOutCheck:
    """Record that the national service refused the check's file, in its words.

    Nothing is imported and nobody is read as opted out: the submitted patients' entries
    go, and the programme keeps whatever check it had until a new one completes.
    """
    with transaction.atomic():
        claimed = NationalOptOutCheck.objects.filter(
            pk=check.pk, status__in=NationalOptOutCheck.WAITING
        ).update(
            status=NationalOptOutCheck.Status.FAILED,
            failure=words,
            replied_at=timezone.now() if received else None,
            next_send_at=None,
        )
        if claimed != 1:
            raise NotAllowedNow("This check is no longer waiting for the national service.")
        deleted, _ = NationalOptOutEntry.objects.filter(check_run=check).delete()
        mesh_message_record(
            received, check=check, kind=MeshInboxMessage.Kind.ERROR, detail=words[:2000]
        )
        check.refresh_from_db()
        audit_log(
            actor=actor,
            action="national_opt_out.check_failed",
            obj=check,
            details={
                "programme": check.programme.slug,
                "local_id": check.local_id,
                "service_said": words,
                "entries_deleted": deleted,
                "mesh_message": received.message_id if received else None,
            },
        )
    return check


def national_check_complete(
    *,
    actor: User | None,
    check: NationalOptOutCheck,
    returned: bytes,
    checked_on: object = None,
    received: mesh.Received | None = None,
) -> NationalOptOutCheck:
    """Import the national service's reply: who was submitted but not returned opted out.

    The reply is the numbers that may be used (one a line, with or without a comma, LF
    or CRLF). A reply of words is the service's error: the check fails with them shown
    and nothing is imported. Over MESH, `received` is recorded in the same transaction.
    """
    checked_on, expires_on = _clean_checked_on(checked_on)
    if not check.waiting:
        raise NotAllowedNow(f"This check is {check.get_status_display().lower()}.")
    text = decode_text(returned, field="returned")
    reply = national_reply_kind(text)
    if reply.kind == "error":
        return national_check_fail(actor=actor, check=check, words=reply.words, received=received)
    if reply.kind == "note":
        raise InvalidInput(
            f"This file is not a reply of NHS numbers; it says: “{reply.words}”.",
            field="returned",
        )
    submitted = selectors.national_check_entry_ids_by_index(check)
    returned_set, bad = _returned_indexes(text, submitted=set(submitted))
    if bad:
        raise _bad_file("returned", bad)
    with transaction.atomic():
        claimed = NationalOptOutCheck.objects.filter(
            pk=check.pk, status__in=NationalOptOutCheck.WAITING
        ).update(
            status=NationalOptOutCheck.Status.COMPLETE,
            checked_on=checked_on,
            expires_on=expires_on,
            returned=len(returned_set),
            opted_out=len(submitted) - len(returned_set),
            replied_at=timezone.now() if received else None,
            next_send_at=None,
        )
        if claimed != 1:
            raise NotAllowedNow("This check has already been completed.")
        entries = NationalOptOutEntry.objects.filter(check_run=check)
        entries.update(opted_out=True)
        returned_ids = [submitted[i] for i in returned_set]
        for chunk in _chunks(returned_ids):
            entries.filter(pk__in=chunk).update(opted_out=False)
        mesh_message_record(received, check=check, kind=MeshInboxMessage.Kind.REPLY)
        check.refresh_from_db()
        # Compiled once, now, for every job to come (the register compiles it on first
        # need if this does not run).
        transaction.on_commit(lambda: _national_results_compile(check))
        audit_log(
            actor=actor,
            action="national_opt_out.check_completed",
            obj=check,
            details={
                "programme": check.programme.slug,
                "submitted": check.submitted,
                "returned": check.returned,
                "opted_out": check.opted_out,
                "checked_on": checked_on.isoformat(),
                "expires_on": expires_on.isoformat(),
                "local_id": check.local_id,
                "mesh_message": received.message_id if received else None,
            },
        )
    return check


def _national_results_compile(check: NationalOptOutCheck) -> None:
    try:
        register.national_check_results(check=check)
    except Exception:  # the register compiles it when it is first needed
        log.exception("The results of national check %s were not compiled", check.pk)


def national_check_import(
    *,
    actor: User,
    programme: Programme,
    submitted: bytes,
    returned: bytes,
    checked_on: object = None,
) -> NationalOptOutCheck:
    """Record a check from both files: the one sent to the national service and its answer."""
    _clean_checked_on(checked_on)
    good, bad = number_lines(decode_text(submitted, field="submitted"))
    if bad:
        raise _bad_file("submitted", bad)
    if not good:
        raise InvalidInput("The submitted file has no NHS number.", field="submitted")
    with transaction.atomic():
        ids = patients_get_or_create(nhs_numbers=[n for _, n in good])
        check = NationalOptOutCheck.objects.create(
            programme=programme, created_by=actor, submitted=len(ids)
        )
        insert_rows(
            NationalOptOutEntry,
            ("check_run", "patient"),
            [(check.pk, pid) for pid in sorted(set(ids.values()))],
        )
        audit_log(
            actor=actor,
            action="national_opt_out.check_started",
            obj=check,
            details={"programme": programme.slug, "submitted": len(ids), "from_file": True},
        )
        return national_check_complete(
            actor=actor, check=check, returned=returned, checked_on=checked_on
        )


def national_checks_purge_expired(*, today: dt.date | None = None) -> list[int]:
    """Delete the per-patient results of expired checks (and of never-returned ones).

    The check rows stay, with their dates and counts, as the record of what was done.
    """
    today = today or timezone.localdate()
    stale_start = timezone.now() - dt.timedelta(days=settings.PHM_NATIONAL_OPT_OUT_DAYS)
    due = NationalOptOutCheck.objects.filter(
        status=NationalOptOutCheck.Status.COMPLETE, expires_on__lte=today
    ) | NationalOptOutCheck.objects.filter(
        status__in=NationalOptOutCheck.WAITING, created_at__lte=stale_start
    )
    purged = []
    for check in due.only("pk", "status"):
        with transaction.atomic():
            claimed = NationalOptOutCheck.objects.filter(pk=check.pk, status=check.status).update(
                status=NationalOptOutCheck.Status.PURGED, purged_at=timezone.now()
            )
            if not claimed:
                continue
            deleted, _ = NationalOptOutEntry.objects.filter(check_run_id=check.pk).delete()
            register.national_check_results_delete(check_ids=[check.pk])
            check.refresh_from_db()
            audit_log(
                actor=None,
                action="national_opt_out.check_purged",
                obj=check,
                details={
                    "programme": check.programme.slug,
                    "entries_deleted": deleted,
                    "expires_on": check.expires_on.isoformat() if check.expires_on else None,
                },
            )
            purged.append(check.pk)
    return purged


# --- the register ------------------------------------------------------------------------
def opt_out_register_query(
    *,
    actor: User,
    data_flow: DataFlow,
    nhs_numbers: Sequence[object],
    practice_ids: Sequence[int] | None,
) -> register.RegisterResult:
    """Answer a person's question to the register for a flow, within their hourly quota.

    1. Validate the numbers (400 naming the bad items): a typo costs no quota.
    2. Count them against the person's hourly quota; over it, audit the refusal and
       raise RegisterQuotaExceeded (429) before anything is looked up.
    3. Answer (register.opt_out_register_check) for the patients of practice_ids only
       (permissions.register_practice_ids_for; None: every patient); a refusal of the
       flow (409) gives the numbers back.
    4. Audit the question with counts only.
    """
    numbers = selectors.normalise_many(nhs_numbers)
    try:
        taken = register_quota_take(user=actor, count=len(numbers))
    except RegisterQuotaExceeded as exc:
        audit_log(
            actor=actor,
            action="opt_out_register.quota_exceeded",
            obj=data_flow,
            details={
                "numbers": len(numbers),
                "used": exc.used,
                "quota": exc.quota,
                "retry_after": exc.retry_after,
            },
        )
        raise
    try:
        result = register.opt_out_register_check(
            data_flow=data_flow, nhs_numbers=numbers, practice_ids=practice_ids
        )
    except NotAllowedNow:
        register_quota_give_back(taken)
        raise
    audit_log(
        actor=actor,
        action="opt_out_register.checked",
        obj=data_flow,
        details={
            "numbers": len(nhs_numbers),
            "allowed": result.allowed,
            "excluded": result.counts,
            "national_check": result.national_check_id,
            "national_opt_out_exemption": result.national_exemption,
            "only_patients_of_own_practices": practice_ids is not None,
        },
    )
    return result
