"""Destruction runs of a programme's data and keys, their steps and evidence, and certificates."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from governance.models import Programme


class DestructionRun(models.Model):
    """One destruction of everything a programme holds; its steps record what was done.

    The manifest (what there was to destroy) is written first and kept with its hash;
    the certificate quotes that hash.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="destruction_runs"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    early = models.BooleanField(default=False, help_text="Asked for before the programme ended.")
    reason = models.TextField(blank=True, help_text="Why destruction runs before the end.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the keys were erased: from then on nothing is readable.",
    )
    manifest = models.JSONField(null=True, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # One destruction at a time per programme: asking again returns the active run.
            models.UniqueConstraint(
                fields=["programme"],
                condition=models.Q(status__in=["queued", "running"]),
                name="destructionrun_one_active_per_programme",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="destructionrun_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(early=False) | ~models.Q(reason=""),
                name="destructionrun_early_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"destruction run {self.pk} of {self.programme.slug} ({self.status})"


class DestructionStep(models.Model):
    """One step of a run; claimed with a conditional update, its evidence kept once done."""

    class Name(models.TextChoices):
        MANIFEST = "manifest", "Write the manifest"
        ERASE_KEYS = "erase_keys", "Erase the keys (cryptographic erase)"
        DELETE_FILES = "delete_files", "Delete the files"
        DELETE_ROWS = "delete_rows", "Delete the rows"
        VERIFY = "verify", "Verify nothing remains readable"
        CERTIFICATE = "certificate", "Issue the signed certificate"
        DELIVER = "deliver", "Send the certificate to the controllers"

    ORDER = [
        Name.MANIFEST,
        Name.ERASE_KEYS,
        Name.DELETE_FILES,
        Name.DELETE_ROWS,
        Name.VERIFY,
        Name.CERTIFICATE,
        Name.DELIVER,
    ]

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(DestructionRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=20, choices=Name.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="destructionstep_unique_name"),
            models.UniqueConstraint(fields=["run", "index"], name="destructionstep_unique_index"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of run {self.run_id} ({self.status})"


class Certificate(models.Model):
    """A data destruction certificate: the signed PDF, as issued and sent."""

    serial = models.CharField(max_length=40, unique=True)
    run = models.OneToOneField(DestructionRun, on_delete=models.PROTECT, related_name="certificate")
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="certificates")
    issued_at = models.DateTimeField()
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64, help_text="Of the signed PDF.")
    signer_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the signing certificate."
    )

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"certificate {self.serial}"


class SigningCertificate(models.Model):
    """A certificate (public part only) the portal has signed with; the key is never here."""

    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the DER.")
    subject = models.CharField(max_length=300)
    certificate_pem = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.fingerprint[:16]})"


class DestructionReminder(models.Model):
    """A reminder sent to the CSU admins that an ended programme awaits destruction."""

    programme = models.ForeignKey(
        Programme, on_delete=models.CASCADE, related_name="destruction_reminders"
    )
    sent_at = models.DateTimeField(auto_now_add=True)
    recipients = models.JSONField(default=list)

    class Meta:
        ordering = ["-sent_at"]
        indexes = [
            # destruction_reminders_send: the last reminder of each programme
            models.Index(fields=["programme", "-sent_at"], name="reminder_programme_sent"),
        ]

    def __str__(self) -> str:
        return f"reminder for {self.programme.slug} at {self.sent_at:%Y-%m-%d}"
