"""Privacy notices: one per programme, each a list of versions; published versions never change."""

from __future__ import annotations

from django.db import models

from governance.models import Programme, User


class Notice(models.Model):
    """The privacy notice of one programme; what it says lives in its versions."""

    programme = models.OneToOneField(Programme, on_delete=models.PROTECT, related_name="notice")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["programme__name"]

    def __str__(self) -> str:
        return f"Privacy notice of {self.programme.name}"


class NoticeVersion(models.Model):
    """One version of a notice: a draft a DPO edits, then published (frozen), perhaps withdrawn.

    Once published only the move to withdrawn may touch the row; a database trigger
    (migration 0002) refuses any other change and any deletion, whatever the caller.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        WITHDRAWN = "withdrawn", "Withdrawn"

    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # [{key, title, generated_text, local_text}] in reading order (notices.generator).
    sections = models.JSONField(default=list)
    # The governance facts the text was generated from: a new draft compares them
    # with the last published version's to say what changed.
    facts = models.JSONField(default=dict)
    changes = models.JSONField(default=list, blank=True)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    withdrawn_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["notice", "-number"]
        indexes = [
            # selectors.current_version: the newest published version of a programme's notice
            models.Index(fields=["notice", "status", "number"], name="noticeversion_current"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["notice", "number"], name="noticeversion_unique_number"
            ),
            # At most one draft per notice: a new draft refreshes the open one.
            models.UniqueConstraint(
                fields=["notice"],
                condition=models.Q(status="draft"),
                name="noticeversion_one_draft",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "published", "withdrawn"]),
                name="noticeversion_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(status="draft")
                | (models.Q(published_at__isnull=False) & models.Q(published_by__isnull=False)),
                name="noticeversion_published_has_publisher",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="withdrawn") | models.Q(withdrawn_at__isnull=False),
                name="noticeversion_withdrawn_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"),
                name="noticeversion_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notice.programme.name}, version {self.number} ({self.get_status_display()})"

    @property
    def programme(self) -> Programme:
        return self.notice.programme

    @property
    def is_public(self) -> bool:
        return self.status in (self.Status.PUBLISHED, self.Status.WITHDRAWN)
