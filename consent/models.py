"""Opt-outs: Type 1 at the practice, national data opt-out checks, patients' requests.

No NHS number is stored in the clear: a patient is found by the keyed blind index of
their number and the number itself is encrypted (phm_portal/lib/crypto.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from governance.models import Organisation, Programme, User

NHS_NUMBER_PURPOSE = "consent.patient.nhs_number"
REQUEST_PURPOSE = "consent.type1_request.details"


class Patient(models.Model):
    """An NHS number the portal knows: its blind index, and the number encrypted."""

    nhs_index = models.CharField(max_length=64, unique=True)
    nhs_number_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"patient {self.nhs_index[:12]}"

    @property
    def index_prefix(self) -> str:
        """What audit events and logs may name instead of the NHS number."""
        return self.nhs_index[:12]


class Registration(models.Model):
    """A patient known at a practice: the cohort of the practice's programmes.

    Rows come from every way a number enters the portal with a practice: Type 1
    events, patients' requests that were recorded, and programmes' extracts. Where each
    came from is kept: `elsewhere` for anything but an extract, and one
    RegistrationFromExtract per programme whose extract named the patient there, so
    that destroying a programme's data removes what only its extracts taught the portal.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="registrations")
    practice = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="consent_registrations"
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    # Learned other than from an extract (Type 1, a recorded request, the demo); rows from
    # before origins were kept count as such, so nothing is lost by mistake.
    elsewhere = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "patient"], name="registration_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} at {self.practice.ods_code}"


class RegistrationFromExtract(models.Model):
    """That an extract of a programme named the patient at the practice.

    Destroyed with the programme's data; a registration left with no source goes too.
    """

    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="extract_sources"
    )
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "programme"], name="registration_source_unique"
            ),
        ]
        indexes = [
            # destruction: the programme's sources
            models.Index(fields=["programme"], name="registration_source_prog"),
        ]

    def __str__(self) -> str:
        return f"{self.registration} from an extract of programme {self.programme_id}"


class OptOutCode(models.Model):
    """A clinical code of the Type 1 opt-out (seeded by a data migration, not in code)."""

    class Kind(models.TextChoices):
        DISSENT = "dissent", "Dissent (Type 1 opt-out)"
        WITHDRAWAL = "withdrawal", "Withdrawal of dissent"

    snomed_ct = models.CharField("SNOMED CT concept", max_length=18, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    display = models.CharField(max_length=200)
    read_v2 = models.CharField("Read v2", max_length=10, blank=True)
    ctv3 = models.CharField("CTV3", max_length=10, blank=True)
    preferred = models.BooleanField(
        default=True, help_text="The code recorded for new events of this kind."
    )

    class Meta:
        ordering = ["kind", "snomed_ct"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(preferred=True), name="optoutcode_one_preferred"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["dissent", "withdrawal"]), name="optoutcode_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.snomed_ct} {self.display}"


class Type1Import(models.Model):
    """One file of Type 1 events imported from a practice system, with its report."""

    practice = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="type1_imports"
    )
    uploaded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    lines = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list, blank=True)
    partial = models.BooleanField(default=False)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"import {self.pk} at {self.practice.ods_code}: {self.accepted} accepted"


class Type1Request(models.Model):
    """A patient's online request for a Type 1 opt-out, waiting for the practice.

    Never applied automatically: a practice manager verifies who asked, then records
    a dissent (method online) or declines. The patient's details are one encrypted field.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the practice"
        RECORDED = "recorded", "Recorded"
        DECLINED = "declined", "Declined"

    practice = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="type1_requests"
    )
    reference = models.CharField(max_length=20, unique=True)
    details_encrypted = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["submitted_at"]
        indexes = [
            # the practice's queue: pending requests, oldest first
            models.Index(fields=["practice", "status", "submitted_at"], name="type1req_queue"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "recorded", "declined"]),
                name="type1req_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="declined") | ~Q(decline_reason=""),
                name="type1req_declined_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"request {self.reference} ({self.get_status_display().lower()})"


class Type1EventQuerySet(models.QuerySet):
    """Events are only ever added: the query set refuses bulk changes."""

    def update(self, **kwargs):
        raise TypeError("Type 1 events are append-only: record a new event instead.")

    def delete(self):
        raise TypeError("Type 1 events are append-only and are never deleted.")


class Type1Event(models.Model):
    """One dissent or withdrawal of dissent, at one practice, for one patient.

    Append-only (the ORM refuses changes and a database trigger refuses UPDATE, and on
    PostgreSQL DELETE). The patient's current state is their latest event, by the date
    they asked (recorded_on) and then by the order of recording.
    """

    class Event(models.TextChoices):
        DISSENT = "dissent", "Opt-out (dissent)"
        WITHDRAWAL = "withdrawal", "Withdrawal of opt-out"

    class Method(models.TextChoices):
        IN_PERSON = "in_person", "In person"
        LETTER = "letter", "Letter"
        PHONE = "phone", "Phone"
        ONLINE = "online", "Online"
        NOT_RECORDED = "not_recorded", "Not recorded (imported)"

    # Only the two composite indexes of Meta: each index more slows a 100,000-line import,
    # and practice and patient look-ups use their prefixes. The foreign keys stay constraints.
    practice = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="type1_events", db_index=False
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="type1_events", db_index=False
    )
    event = models.CharField(max_length=12, choices=Event.choices)
    code = models.ForeignKey(OptOutCode, on_delete=models.PROTECT, related_name="+", db_index=False)
    method = models.CharField(max_length=12, choices=Method.choices)
    recorded_on = models.DateField(help_text="The day the patient asked.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    source_import = models.ForeignKey(
        Type1Import,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    source_request = models.OneToOneField(
        Type1Request, on_delete=models.PROTECT, null=True, blank=True, related_name="event"
    )

    objects = Type1EventQuerySet.as_manager()

    class Meta:
        ordering = ["recorded_on", "pk"]
        indexes = [
            # the current state: the latest event of each patient at a practice
            models.Index(fields=["practice", "patient", "recorded_on", "id"], name="type1_latest"),
            # the register: every event of a patient across the programme's practices
            models.Index(fields=["patient", "practice"], name="type1_patient"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event__in=["dissent", "withdrawal"]), name="type1_event_known"
            ),
            models.CheckConstraint(
                condition=Q(method__in=["in_person", "letter", "phone", "online", "not_recorded"]),
                name="type1_method_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} at {self.practice.ods_code} on {self.recorded_on}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError("Type 1 events are append-only: record a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Type 1 events are append-only and are never deleted.")


class PracticeListSize(models.Model):
    """How many patients a practice had registered on a day: the rate's denominator."""

    practice = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="list_sizes")
    as_of = models.DateField()
    patients = models.PositiveIntegerField()
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice", "as_of"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "as_of"], name="listsize_one_per_day"),
            models.CheckConstraint(condition=Q(patients__gt=0), name="listsize_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.practice.ods_code}: {self.patients} patients on {self.as_of}"


class NationalOptOutCheck(models.Model):
    """One run of the national "Check for National Data Opt-outs" service for a programme.

    The portal builds the submission (the programme's cohort); the file the service
    returns lists the numbers that may be used; who was submitted but not returned has
    opted out. Results are used until expires_on, then purged: the row stays with its
    dates and counts, the per-patient entries go.

    The file goes to the service by hand (a person downloads and sends it) or, where MESH
    is configured, over MESH (consent/national_exchange.py): sent, then answered.
    """

    class Status(models.TextChoices):
        AWAITING_RETURN = "awaiting_return", "Awaiting the national service"
        SENT = "sent", "Sent over MESH, awaiting the national service"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed: the national service refused the file"
        PURGED = "purged", "Expired and purged"

    class Transport(models.TextChoices):
        MANUAL = "manual", "By hand (download and send)"
        MESH = "mesh", "MESH"

    # Waiting for the national service's answer (by hand, or sent over MESH).
    WAITING = (Status.AWAITING_RETURN, Status.SENT)

    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="national_opt_out_checks"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AWAITING_RETURN)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    checked_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    submitted = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(null=True, blank=True)
    opted_out = models.PositiveIntegerField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    # The national service's name for the file: <mailbox>-<DDMMYY>-<sequence in the month>,
    # used as the file name, the MESH subject and the local id, and matched in its reply.
    local_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.MANUAL)
    # Loaded by load_demo: synthetic results, said so on the check's page.
    demo = models.BooleanField(default=False)
    # MESH: the message sent, its attempts (retried with backoff) and the reply.
    mesh_message_id = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveIntegerField(default=0)
    next_send_at = models.DateTimeField(null=True, blank=True)
    send_error = models.TextField(blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    # The national service's words: why it refused the file, or what else it said.
    failure = models.TextField(blank=True)
    service_notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the register: the programme's complete, unexpired checks
            models.Index(fields=["programme", "status", "expires_on"], name="natcheck_usable"),
            # the purge: complete checks past their expiry
            models.Index(fields=["status", "expires_on"], name="natcheck_expiry"),
            # the MESH poll: checks over MESH still to send, or waiting for their reply
            models.Index(fields=["transport", "status"], name="natcheck_mesh"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["awaiting_return", "sent", "complete", "failed", "purged"]),
                name="natcheck_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="complete")
                | (Q(checked_on__isnull=False) & Q(expires_on__isnull=False)),
                name="natcheck_complete_has_dates",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="natcheck_sent_has_time",
            ),
            models.CheckConstraint(
                condition=Q(transport__in=["manual", "mesh"]), name="natcheck_transport_known"
            ),
        ]

    def __str__(self) -> str:
        return f"national opt-out check {self.pk} of {self.programme.slug}"

    @property
    def waiting(self) -> bool:
        """Whether the check still waits for the national service's answer."""
        return self.status in self.WAITING

    @property
    def file_name(self) -> str:
        """Return the submission's file name: the service's <mailbox>-<DDMMYY>-<NNNN>.dat."""
        if self.local_id:
            return f"{self.local_id}.dat"
        return f"{self.programme.slug}-check-{self.pk}.dat"


class MeshInboxMessage(models.Model):
    """A message read from the portal's MESH inbox, recorded before it is acknowledged.

    The row is written in the same transaction as the import of the reply, so a worker
    killed between the import and the acknowledgement finds it at the next poll and
    only acknowledges (the reply is imported exactly once).
    """

    class Kind(models.TextChoices):
        REPLY = "reply", "The national service's reply"
        ERROR = "error", "The national service's error"
        NOTE = "note", "Another message of the national service"
        UNMATCHED = "unmatched", "Matched no check"
        REFUSED = "refused", "A reply the portal could not import"

    message_id = models.CharField(max_length=64, unique=True)
    check_run = models.ForeignKey(
        NationalOptOutCheck,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mesh_messages",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    local_id = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    detail = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["reply", "error", "note", "unmatched", "refused"]),
                name="meshmsg_kind_known",
            ),
        ]

    def __str__(self) -> str:
        return f"MESH message {self.message_id} ({self.kind})"


class NationalOptOutEntry(models.Model):
    """One submitted patient of a check, and (once returned) whether they opted out.

    Temporary by design: deleted when the check expires.
    """

    check_run = models.ForeignKey(
        NationalOptOutCheck, on_delete=models.CASCADE, related_name="entries"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    opted_out = models.BooleanField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["check_run", "patient"], name="natentry_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} in check {self.check_run_id}"
