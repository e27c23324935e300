"""Who takes part in a PHM programme, in what role, on what legal basis; and the people."""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

ods_code_validator = RegexValidator(
    r"^[A-Z0-9]{3,9}$", "An ODS code has 3 to 9 capital letters and digits, e.g. A81001 or 15N."
)


class User(AbstractUser):
    """A person who signs in; django-guardian binds them to their organisations."""

    class Role(models.TextChoices):
        PRACTICE_MANAGER = "practice_manager", "Practice manager"
        DPO = "dpo", "Data Protection Officer"
        CSU_ADMIN = "csu_admin", "CSU admin"
        AUDITOR = "auditor", "Auditor"
        SIGNATORY = "signatory", "Signatory (SIRO or Caldicott Guardian)"

    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    role__in=["practice_manager", "dpo", "csu_admin", "auditor", "signatory"]
                ),
                name="user_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_full_name() or self.username} ({self.get_role_display()})"

    def can(self, capability: str) -> bool:
        """Return whether the person's role allows the capability (see permissions.py)."""
        from governance.permissions import ROLE_CAPABILITIES

        return self.is_active and capability in ROLE_CAPABILITIES.get(self.role, ())


class ApiToken(models.Model):
    """A key to the REST API (`Authorization: Token <key>`), kept only as its SHA-256.

    It works until `expires_at`, and only while its holder's password and second factor
    are those it was issued under (`credentials_stamp`); one issued without a confirmed
    one-time code does not work for someone who needs one (`refusal`).
    """

    KEY_PREFIX = "phm_"  # lets secret scanners and people recognise a portal token

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, shown.")
    digest = models.CharField(max_length=64, unique=True)  # every API request looks this up
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    second_factor = models.BooleanField(
        default=False, help_text="Issued after a one-time code was confirmed."
    )
    credentials_stamp = models.CharField(max_length=64)

    class Meta:
        indexes = [
            # A person's tokens, newest first: their tokens page and GET /api/v1/auth/tokens/.
            models.Index(fields=["user", "-created_at"], name="apitoken_user_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="apitoken_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user.username}"

    @staticmethod
    def digest_of(key: str) -> str:
        """Return what is stored of a key (the key is 256 random bits: a plain hash will do)."""
        import hashlib

        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    @staticmethod
    def credentials_stamp_of(user: User) -> str:
        """Return a keyed hash of the person's password hash and confirmed authenticators.

        Any new password (page, set-password link, admin, shell) or a second factor set
        up or reset changes it, so the tokens issued before stop working.
        """
        from django.utils.crypto import salted_hmac
        from django_otp.plugins.otp_totp.models import TOTPDevice

        devices = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")
        value = "\n".join([user.password, *(f"{d.pk}:{d.key}" for d in devices)])
        return salted_hmac(
            "governance.ApiToken.credentials_stamp", value, algorithm="sha256"
        ).hexdigest()

    def refusal(self, *, now: dt.datetime, stamp: str | None = None) -> str | None:
        """Return why this token does not work now, or None when it does.

        `stamp` is the holder's present credentials_stamp_of, when already known.
        """
        from django.utils.crypto import constant_time_compare

        from phm_portal.signin import needs_second_factor

        user = self.user
        if now >= self.expires_at:
            return "This token has expired: ask for a new one (POST /api/v1/auth/token/)."
        if not user.is_active:
            return "This token's account is disabled."
        if stamp is None:
            stamp = self.credentials_stamp_of(user)
        if not constant_time_compare(self.credentials_stamp, stamp):
            return (
                "This token no longer works: the password or second factor of its account "
                "changed after it was issued. Ask for a new one."
            )
        if needs_second_factor(user) and not self.second_factor:
            return (
                "This token was issued without a one-time code, which this account now needs: "
                "ask for a new one with a current code in 'otp'."
            )
        return None


def dspt_year_validator(value: str) -> None:
    """Accept an assessment year such as 2025-26 (the second part the year after the first)."""
    from django.core.exceptions import ValidationError

    if not re.fullmatch(r"\d{4}-\d{2}", value or "") or (int(value[:4]) + 1) % 100 != int(
        value[5:]
    ):
        raise ValidationError("A DSPT assessment year looks like 2025-26.")


class DSPTStatus(models.TextChoices):
    """The Data Security and Protection Toolkit's published statuses."""

    EXCEEDED = "exceeded", "Standards Exceeded"
    MET = "met", "Standards Met"
    APPROACHING = "approaching", "Approaching Standards"
    NOT_MET = "not_met", "Standards Not Met"
    NOT_PUBLISHED = "not_published", "Not Published"


class Organisation(models.Model):
    DSPTStatus = DSPTStatus

    class Kind(models.TextChoices):
        GP_PRACTICE = "gp_practice", "GP practice"
        PCN = "pcn", "Primary care network"
        CCG = "ccg", "Clinical commissioning group / integrated care board"
        CSU = "csu", "Commissioning support unit"
        NHS_TRUST = "nhs_trust", "NHS trust"
        COMMUNITY_PROVIDER = "community_provider", "Community provider"
        LOCAL_AUTHORITY = "local_authority", "Local authority"
        NATIONAL_BODY = "national_body", "National body"
        COMMERCIAL_PROCESSOR = "commercial_processor", "Commercial processor"

    ods_code = models.CharField(
        "ODS code", max_length=9, unique=True, validators=[ods_code_validator]
    )
    name = models.CharField(max_length=200)
    short_name = models.CharField(
        max_length=40, blank=True, help_text="How notices name it after first use, e.g. NECS."
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    part_of = models.CharField(max_length=200, blank=True, help_text="e.g. NHS England")
    postcode = models.CharField(max_length=8, blank=True)
    website = models.URLField(blank=True)
    dpo_name = models.CharField("DPO name", max_length=200, blank=True)
    dpo_email = models.EmailField("DPO email", blank=True)
    ico_registration_number = models.CharField(
        "ICO registration number",
        max_length=12,
        blank=True,
        validators=[
            RegexValidator(r"^Z[A-Z0-9]{6,9}$", "An ICO registration number looks like ZA123456.")
        ],
    )
    # Assurance (governance.assurance reads these): the Data Security and Protection
    # Toolkit's published status and the ICO registration's expiry.
    dspt_status = models.CharField(
        "DSPT status", max_length=20, choices=DSPTStatus.choices, default=DSPTStatus.NOT_PUBLISHED
    )
    dspt_year = models.CharField(
        "DSPT assessment year",
        max_length=7,
        blank=True,
        validators=[dspt_year_validator],
        help_text="The assessment year the status is for, e.g. 2025-26.",
    )
    dspt_published_on = models.DateField("DSPT published on", null=True, blank=True)
    ico_registration_expires_on = models.DateField(
        "ICO registration expires on", null=True, blank=True
    )

    class Meta:
        ordering = ["name"]
        permissions = [("act_for_organisation", "Can act for the organisation")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ods_code__regex=r"^[A-Z0-9]{3,9}$"),
                name="organisation_ods_format",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    dspt_status__in=["exceeded", "met", "approaching", "not_met", "not_published"]
                ),
                name="organisation_dspt_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code})"

    @property
    def postcode_district(self) -> str:
        return self.postcode.split(" ")[0] if self.postcode else ""

    @property
    def display_name(self) -> str:
        return self.short_name or self.name


class LegalBasis(models.Model):
    """An entry of the catalogue of lawful bases and conditions (seeded by a migration)."""

    class Regime(models.TextChoices):
        UK_GDPR_6 = "uk_gdpr_6", "UK GDPR Article 6 (lawful basis)"
        UK_GDPR_9 = "uk_gdpr_9", "UK GDPR Article 9 (special category condition)"
        CLDC = "cldc", "Common law duty of confidentiality"
        DPA_2018_SCH1 = "dpa2018_sch1", "Data Protection Act 2018 Schedule 1"
        COPI = "copi", "Control of Patient Information Regulations 2002"

    code = models.SlugField(max_length=40, unique=True)
    regime = models.CharField(max_length=20, choices=Regime.choices)
    article = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    text = models.TextField(help_text="The official wording.")

    class Meta:
        ordering = ["regime", "code"]
        verbose_name_plural = "legal bases"

    def __str__(self) -> str:
        return f"{self.get_regime_display()} {self.article}"


class Programme(models.Model):
    """The PHM programme of one region or partnership."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"
        DESTROYED = "destroyed", "Data destroyed"

    class OverseasTransfer(models.TextChoices):
        NOT_RECORDED = "not_recorded", "Not yet recorded"
        NONE = "none", "No transfer outside the UK"
        ADEQUACY = "adequacy", "To a country with UK adequacy regulations"
        IDTA = "idta", "Under the ICO's International Data Transfer Agreement"
        ADDENDUM = "addendum", "Under EU standard contractual clauses with the UK addendum"

    class Type1Contact(models.TextChoices):
        PRACTICE = "practice", "The patient's GP practice"
        PRACTICE_DPO = "practice_dpo", "The practice's Data Protection Officer"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=200)
    partnership = models.CharField(max_length=200, blank=True)
    population = models.PositiveIntegerField(
        null=True, blank=True, help_text="People who live in the area, where the notice says."
    )
    start_date = models.DateField(null=True, blank=True)
    length_weeks = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(520)],
        help_text="Blank where the programme has not stated its length.",
    )
    # Derived from start_date and length_weeks by the services; stored so that
    # "which programmes have ended?" is one indexed query.
    end_date = models.DateField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    purposes = models.JSONField(default=list, blank=True)
    legal_bases = models.ManyToManyField(LegalBasis, blank=True, related_name="programmes")
    overseas_transfer = models.CharField(
        max_length=20, choices=OverseasTransfer.choices, default=OverseasTransfer.NOT_RECORDED
    )
    overseas_transfer_detail = models.TextField(blank=True)
    type1_opt_out_applies = models.BooleanField(default=True)
    type1_opt_out_contact = models.CharField(
        max_length=20, choices=Type1Contact.choices, default=Type1Contact.PRACTICE
    )
    national_opt_out_applies = models.BooleanField(default=True)
    national_opt_out_exemption = models.TextField(
        blank=True, help_text="Why the national data opt-out does not apply, where it does not."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # programmes_mark_ended: live programmes whose end date has passed
            models.Index(fields=["status", "end_date"], name="programme_status_end"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(national_opt_out_applies=True)
                | ~models.Q(national_opt_out_exemption=""),
                name="programme_exemption_when_no_national_opt_out",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["planned", "live", "ended", "destroyed"]),
                name="programme_status_known",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    OPEN_STATUSES = (Status.PLANNED, Status.LIVE)

    @property
    def is_open(self) -> bool:
        """Return whether the programme still changes and data may move in it (not yet ended)."""
        return self.status in self.OPEN_STATUSES

    @staticmethod
    def compute_end_date(start: dt.date | None, weeks: int | None) -> dt.date | None:
        """Return the day the programme ends: its start plus its length, when both are known."""
        if start is None or weeks is None:
            return None
        return start + dt.timedelta(weeks=weeks)


class Participation(models.Model):
    """The role an organisation plays in a programme, and what it does there."""

    class Role(models.TextChoices):
        CONTROLLER = "controller", "Controller"
        JOINT_CONTROLLER = "joint_controller", "Joint controller"
        PROCESSOR = "processor", "Processor"
        SUB_PROCESSOR = "sub_processor", "Sub-processor"
        DATA_PROVIDER = "data_provider", "Data provider"
        RECIPIENT = "recipient", "Recipient"

    class Responsibility(models.TextChoices):
        PROVIDE_DATA = "provide_data", "send the information they hold"
        PSEUDONYMISE = "pseudonymise", "de-identify (pseudonymise) the data"
        LINK = "link", "link the information together"
        COMBINE = "combine", "combine the data"
        ANALYSE = "analyse", "analyse the data"
        SUPPORT = "support", "help with this work"
        REVIEW = "review", "review the information and decide who might need additional support"
        RE_IDENTIFY = "re_identify", "use the code to identify patients and offer them services"
        COMMISSION = "commission", "support and oversee the programme"

    CONTROLLER_ROLES = (Role.CONTROLLER, Role.JOINT_CONTROLLER)
    PROCESSOR_ROLES = (Role.PROCESSOR, Role.SUB_PROCESSOR)

    programme = models.ForeignKey(
        Programme, on_delete=models.CASCADE, related_name="participations"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="participations"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    responsibilities = models.JSONField(default=list, blank=True)
    description = models.TextField(
        blank=True, help_text="More about its part, e.g. 'contracted by NHS England'."
    )
    processes_identifiable_data = models.BooleanField(default=True)
    is_lead = models.BooleanField(
        default=False, help_text="The lead controller, whose DPO answers for the programme."
    )

    class Meta:
        ordering = ["programme", "role", "organisation__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "organisation", "role"], name="participation_unique_role"
            ),
            models.UniqueConstraint(
                fields=["programme"],
                condition=models.Q(is_lead=True),
                name="participation_one_lead",
            ),
            models.CheckConstraint(
                condition=models.Q(is_lead=False)
                | models.Q(role__in=["controller", "joint_controller"]),
                name="participation_lead_is_controller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation.name}: {self.get_role_display()} in {self.programme}"

    @property
    def responsibility_labels(self) -> list[str]:
        labels = dict(self.Responsibility.choices)
        return [labels.get(r, r) for r in self.responsibilities]


class DataFlowQuerySet(models.QuerySet):
    def carrying_data(self) -> DataFlowQuerySet:
        """The flows data may move on now: DataFlow.is_approved and Programme.is_open, asked
        of the database."""
        return self.filter(
            status=DataFlow.Status.APPROVED, programme__status__in=Programme.OPEN_STATUSES
        )


class DataFlow(models.Model):
    """Permission for one organisation to send one kind of data to another in a programme.

    No data moves on a flow that is not approved. State changes happen only in
    governance.services (data_flow_submit / approve / reject / suspend / close).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Awaiting decision"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    class Category(models.TextChoices):
        GP = "gp", "GP records"
        HOSPITAL = "hospital", "Hospital records"
        COMMUNITY = "community", "Community services records"
        MENTAL_HEALTH = "mental_health", "Mental health records"
        SOCIAL_CARE = "social_care", "Social care records"
        NATIONAL = "national", "National data sets"

    class Identifiability(models.TextChoices):
        IDENTIFIABLE = "identifiable", "Identifiable"
        PSEUDONYMISED = "pseudonymised", "Pseudonymised"
        ANONYMISED = "anonymised", "Anonymised"

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="data_flows")
    source = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="flows_out")
    destination = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="flows_in")
    data_categories = models.JSONField(default=list)
    identifiability = models.CharField(max_length=20, choices=Identifiability.choices)
    legal_bases = models.ManyToManyField(LegalBasis, blank=True, related_name="data_flows")
    purpose = models.TextField(blank=True)
    dpia_reference = models.CharField("DPIA reference", max_length=100, blank=True)
    dsa_reference = models.CharField("data sharing agreement reference", max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    suspended_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Why data stopped: a person's reason, or the assurance condition that lapsed (the
    # daily watch suspends with suspended_by empty). Uploads and jobs are refused naming it.
    suspension_reason = models.TextField(blank=True)
    # Four eyes on reinstating: one person asks (the conditions hold again), another decides.
    reinstatement_requested_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reinstatement_requested_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DataFlowQuerySet.as_manager()

    # The workflow: action -> (the states it may start from, the state it leads to).
    # governance.services applies it; permissions.data_flow_actions_for reads it.
    TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
        "submit": ((Status.DRAFT,), Status.SUBMITTED),
        "approve": ((Status.SUBMITTED,), Status.APPROVED),
        "reject": ((Status.SUBMITTED,), Status.REJECTED),
        "suspend": ((Status.APPROVED,), Status.SUSPENDED),
        "reinstate": ((Status.SUSPENDED,), Status.APPROVED),
        "close": ((Status.APPROVED, Status.SUSPENDED), Status.CLOSED),
    }

    class Meta:
        ordering = ["programme", "source__name", "destination__name"]
        indexes = [
            # GET /api/v1/data-flows/?programme=..&status=..: the admins' queue and filters
            models.Index(fields=["programme", "status"], name="dataflow_programme_status"),
            # the queue of flows awaiting decision across programmes
            models.Index(fields=["status", "submitted_at"], name="dataflow_status_submitted"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(source=models.F("destination")), name="dataflow_not_to_itself"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["draft", "submitted", "approved", "rejected", "suspended", "closed"]
                ),
                name="dataflow_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    identifiability__in=["identifiable", "pseudonymised", "anonymised"]
                ),
                name="dataflow_identifiability_known",
            ),
            # Four eyes: whoever submitted a flow never decides it.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | models.Q(submitted_by__isnull=True)
                | ~models.Q(decided_by=models.F("submitted_by")),
                name="dataflow_four_eyes",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="rejected") | ~models.Q(decision_comment=""),
                name="dataflow_rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "submitted"])
                | models.Q(decided_at__isnull=False),
                name="dataflow_decided_after_submission",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.source.display_name} → {self.destination.display_name} ({self.programme.slug})"
        )

    @property
    def is_approved(self) -> bool:
        """Return whether data may move on this flow now (only an approved flow carries data)."""
        return self.status == self.Status.APPROVED

    @property
    def category_labels(self) -> list[str]:
        labels = dict(self.Category.choices)
        return [labels.get(c, c) for c in self.data_categories]

    @property
    def choice_label(self) -> str:
        """Return a label telling this flow from others between the same organisations."""
        return (
            f"Data flow #{self.pk}: {self} – {', '.join(self.category_labels)}; "
            f"{self.get_identifiability_display().lower()}"
        )


def _pdf_validator(value: bytes) -> None:
    from django.core.exceptions import ValidationError

    if value and not bytes(value[:1024]).lstrip().startswith(b"%PDF-"):
        raise ValidationError("The document is not a PDF.")


class AssuranceDocument(models.Model):
    """The signed document behind a DPIA or an agreement (a PDF, kept in the database)."""

    MAX_BYTES = 20 * 1024 * 1024

    document = models.BinaryField(blank=True, default=b"", validators=[_pdf_validator])
    document_name = models.CharField(max_length=200, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True

    @property
    def has_document(self) -> bool:
        return bool(self.document_sha256)


class DPIA(AssuranceDocument):
    """A data protection impact assessment of a programme, covering named flows (UK GDPR Art 35).

    Its status moves only in governance.services.assurance: draft -> DPO advice recorded ->
    signed off (once each controller's signatory has signed) -> under review (and back).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        DPO_ADVICE = "dpo_advice", "DPO advice recorded"
        SIGNED_OFF = "signed_off", "Signed off"
        UNDER_REVIEW = "under_review", "Under review"

    class ResidualRisk(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="dpias")
    data_flows = models.ManyToManyField(DataFlow, blank=True, related_name="dpias")
    title = models.CharField(max_length=200)
    version = models.CharField(max_length=20, default="1.0")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    description = models.TextField(help_text="The nature, scope, context and purposes.")
    necessity = models.TextField(
        "necessity and proportionality", help_text="Why the processing is needed and no more."
    )
    residual_risk = models.CharField(
        max_length=10, choices=ResidualRisk.choices, default=ResidualRisk.LOW
    )
    ico_consulted_on = models.DateField("ICO consulted on", null=True, blank=True)
    ico_consultation_outcome = models.TextField("outcome of consulting the ICO", blank=True)
    review_date = models.DateField()
    dpo_advice = models.TextField("DPO's advice", blank=True)
    dpo_advice_followed = models.BooleanField(null=True, blank=True)
    dpo_advice_not_followed_reason = models.TextField(
        "why the DPO's advice was not followed", blank=True
    )
    dpo_advice_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dpo_advice_at = models.DateTimeField(null=True, blank=True)
    signed_off_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["programme", "title", "-version"]
        verbose_name = "DPIA"
        indexes = [
            # governance.assurance: the signed-off DPIAs of a programme covering a flow
            models.Index(fields=["programme", "status"], name="dpia_programme_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["draft", "dpo_advice", "signed_off", "under_review"]
                ),
                name="dpia_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(residual_risk__in=["low", "medium", "high"]),
                name="dpia_residual_risk_known",
            ),
            # A high residual risk is signed off only after consulting the ICO (Art 36).
            models.CheckConstraint(
                condition=~models.Q(status="signed_off")
                | ~models.Q(residual_risk="high")
                | models.Q(ico_consulted_on__isnull=False),
                name="dpia_high_risk_ico_consulted",
            ),
            # Advice not followed says why (Art 35(2), ICO guidance).
            models.CheckConstraint(
                condition=~models.Q(dpo_advice_followed=False)
                | ~models.Q(dpo_advice_not_followed_reason=""),
                name="dpia_advice_not_followed_why",
            ),
        ]

    def __str__(self) -> str:
        return f"DPIA {self.title} v{self.version} ({self.get_status_display().lower()})"


class DPIARisk(models.Model):
    """One risk the DPIA identified: how likely, how severe, and the measure against it."""

    class Likelihood(models.TextChoices):
        REMOTE = "remote", "Remote"
        POSSIBLE = "possible", "Possible"
        PROBABLE = "probable", "Probable"

    class Severity(models.TextChoices):
        MINIMAL = "minimal", "Minimal"
        SIGNIFICANT = "significant", "Significant"
        SEVERE = "severe", "Severe"

    dpia = models.ForeignKey(DPIA, on_delete=models.CASCADE, related_name="risks")
    description = models.TextField()
    likelihood = models.CharField(max_length=10, choices=Likelihood.choices)
    severity = models.CharField(max_length=12, choices=Severity.choices)
    measure = models.TextField(help_text="What reduces or removes the risk.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["dpia", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(likelihood__in=["remote", "possible", "probable"])
                & models.Q(severity__in=["minimal", "significant", "severe"]),
                name="dpiarisk_scales_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description[:60]} ({self.likelihood}, {self.severity})"


class DPIASignOff(models.Model):
    """A controller's signatory signing the DPIA off."""

    dpia = models.ForeignKey(DPIA, on_delete=models.CASCADE, related_name="sign_offs")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    signatory = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["dpia", "signed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dpia", "organisation"], name="dpiasignoff_one_per_controller"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dpia} signed for {self.organisation.display_name} by {self.signatory}"


class SharingAgreement(AssuranceDocument):
    """A data sharing agreement between the parties of a programme, covering named flows."""

    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="sharing_agreements"
    )
    title = models.CharField(max_length=200)
    reference = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=20, default="1.0")
    purpose = models.TextField()
    legal_bases = models.ManyToManyField(LegalBasis, blank=True, related_name="+")
    data_flows = models.ManyToManyField(DataFlow, blank=True, related_name="sharing_agreements")
    start_date = models.DateField()
    review_date = models.DateField()
    expiry_date = models.DateField()
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["programme", "title", "-version"]
        indexes = [
            # governance.assurance: a programme's agreements in date
            models.Index(fields=["programme", "expiry_date"], name="dsa_programme_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start_date__lte=models.F("review_date"))
                & models.Q(review_date__lte=models.F("expiry_date")),
                name="dsa_dates_in_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Agreement {self.title} v{self.version}"


class SharingAgreementParty(models.Model):
    """A party to an agreement, and its signatory's signature."""

    agreement = models.ForeignKey(
        SharingAgreement, on_delete=models.CASCADE, related_name="parties"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    signatory = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["agreement", "organisation__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "organisation"], name="dsaparty_once_per_agreement"
            ),
            models.CheckConstraint(
                condition=models.Q(signatory__isnull=True, signed_on__isnull=True)
                | models.Q(signatory__isnull=False, signed_on__isnull=False),
                name="dsaparty_signed_by_whom_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation.display_name} in {self.agreement}"

    @property
    def is_signed(self) -> bool:
        return self.signed_on is not None


class AssuranceReminder(models.Model):
    """A reminder sent before an expiry (90 and 30 days), so each is sent once."""

    subject = models.CharField(max_length=100)  # e.g. "agreement:12:expiry_date:2027-01-31"
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "days_before"], name="assurancereminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.days_before} days)"
