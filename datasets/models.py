"""Extracts (encrypted at rest), programme keys, pseudonymisation jobs and their parts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from governance.models import DataFlow, Programme


class ProgrammeKey(models.Model):
    """The programme's pseudonymisation key (HMAC), wrapped by the key-encryption key.

    The same patient gets the same code in every extract of one programme; another
    programme has another key. Destroying this row makes the codes unlinkable.
    """

    programme = models.OneToOneField(
        Programme, on_delete=models.PROTECT, related_name="pseudonym_key"
    )
    key_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pseudonymisation key {self.key_id} of {self.programme.slug}"


class Dataset(models.Model):
    """An extract uploaded on an approved data flow, stored encrypted."""

    class Status(models.TextChoices):
        STORED = "stored", "Stored (encrypted)"
        DESTROYED = "destroyed", "Destroyed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    data_flow = models.ForeignKey(DataFlow, on_delete=models.PROTECT, related_name="datasets")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    original_name = models.CharField(max_length=200)
    columns = models.JSONField(help_text="The header of the file, in order.")
    mapping = models.JSONField()
    sha256 = models.CharField(max_length=64, help_text="Of the plaintext as uploaded.")
    bytes = models.BigIntegerField(help_text="Plaintext size.")
    file = models.CharField(max_length=300, help_text="Storage name of the encrypted file.")
    wrapped_key = models.BinaryField()
    segments = models.JSONField(
        default=list,
        blank=True,
        help_text="The encrypted segments: ciphertext offset and length, and the plaintext "
        "offset where each starts.",
    )
    record_starts = models.JSONField(
        default=list,
        blank=True,
        help_text="Where records start, decided once at upload (datasets.pipeline.framing): "
        "[plaintext offset, newlines before it], a few thousand at most; empty for an extract "
        "stored before they were kept, until its first job finds them.",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STORED)

    class Meta:
        ordering = ["-uploaded_at"]
        indexes = [
            # GET /api/v1/datasets/?data_flow=..: a flow's extracts, newest first
            models.Index(fields=["data_flow", "-uploaded_at"], name="dataset_flow_uploaded"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bytes__gte=0), name="dataset_bytes_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.id})"

    @property
    def associated_data(self) -> bytes:
        """Bind the ciphertext to this dataset: a file swapped for another fails to decrypt."""
        return f"dataset:{self.id}".encode()


class Job(models.Model):
    """One pseudonymisation run of a dataset; state and progress live here."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    reference_date = models.DateField(help_text="Ages are counted to this day.")
    rows_in = models.BigIntegerField(default=0)
    rows_out = models.BigIntegerField(default=0)
    excluded = models.JSONField(default=dict)
    invalid_rows = models.JSONField(default=list)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    start_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the task queue last accepted the job's start message; empty while "
        "the queue could not be reached (the job waits, and is sent again).",
    )

    WAITING_FOR_QUEUE = (
        "Waiting for the task queue: it could not be reached when the job was queued. "
        "The job is kept and starts by itself once the queue is back."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Asking twice for the same extract returns the job that is already active.
            models.UniqueConstraint(
                fields=["dataset"],
                condition=models.Q(status__in=["queued", "running"]),
                name="job_one_active_per_dataset",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "running", "succeeded", "failed", "cancelled"]
                ),
                name="job_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status})"

    @property
    def waiting_for_queue(self) -> bool:
        """Queued, but its start message never reached the task queue (yet)."""
        return self.status == self.Status.QUEUED and self.start_sent_at is None


class JobChunk(models.Model):
    """A byte range of the extract, processed by one task; its output is one part."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    start = models.BigIntegerField(help_text="Plaintext offset where the range begins.")
    end = models.BigIntegerField(help_text="Plaintext offset where the next range begins.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a message to run the chunk was last sent; one left unclaimed a "
        "lease after that (its message may have died with a worker) is sent again.",
    )
    attempts = models.PositiveIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    report = models.JSONField(default=dict)
    output_file = models.CharField(max_length=300, blank=True)
    output_key = models.BinaryField(null=True, blank=True)
    vault_file = models.CharField(max_length=300, blank=True)
    vault_key = models.BinaryField(null=True, blank=True)
    output_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="jobchunk_unique_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.job_id} ({self.status})"

    @property
    def associated_data(self) -> bytes:
        return f"job:{self.job_id}:part:{self.index}".encode()

    @property
    def vault_associated_data(self) -> bytes:
        return f"job:{self.job_id}:vault:{self.index}".encode()
