from __future__ import annotations

from django import forms

from governance.models import (
    DPIA,
    AssuranceDocument,
    DataFlow,
    DPIARisk,
    DSPTStatus,
    LegalBasis,
    Organisation,
    Programme,
    User,
)
from governance.permissions import organisations_of, programmes_of
from phm_portal.forms import DateField, PortalForm


class UserCreateForm(PortalForm):
    username = forms.SlugField(max_length=150, help_text="Letters, digits and hyphens.")
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=User.Role.choices, widget=forms.RadioSelect)
    organisations = forms.ModelMultipleChoiceField(
        queryset=Organisation.objects.order_by("name"),
        required=False,
        to_field_name="ods_code",
        widget=forms.CheckboxSelectMultiple,
        help_text="The organisations this person acts for.",
    )


class DataFlowForm(PortalForm):
    """Propose or change a draft data flow (the service checks who may, and the parties)."""

    programme = forms.ModelChoiceField(
        queryset=Programme.objects.none(), to_field_name="slug", empty_label="Choose a programme"
    )
    source = forms.ModelChoiceField(
        queryset=Organisation.objects.none(),
        to_field_name="ods_code",
        empty_label="Choose the organisation that sends",
        label="From (source)",
    )
    destination = forms.ModelChoiceField(
        queryset=Organisation.objects.order_by("name"),
        to_field_name="ods_code",
        empty_label="Choose the organisation that receives",
        label="To (destination)",
    )
    data_categories = forms.MultipleChoiceField(
        choices=DataFlow.Category.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Data",
        help_text="Every category of data this flow carries.",
        error_messages={"required": "Choose at least one category of data."},
    )
    identifiability = forms.ChoiceField(
        choices=DataFlow.Identifiability.choices,
        widget=forms.RadioSelect,
        label="How identifiable is the data?",
    )
    legal_bases = forms.ModelMultipleChoiceField(
        queryset=LegalBasis.objects.all(),
        to_field_name="code",
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Needed before the flow is submitted.",
    )
    purpose = forms.CharField(widget=forms.Textarea, required=False, max_length=2000)
    dpia_reference = forms.CharField(
        label="DPIA reference", required=False, max_length=100, help_text="e.g. DPIA-2026-014"
    )
    dsa_reference = forms.CharField(
        label="Data sharing agreement reference",
        required=False,
        max_length=100,
        help_text="e.g. DSA-NECS-2026-03",
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = (
            programmes_of(user).filter(status__in=Programme.OPEN_STATUSES).order_by("name")
        )
        self.fields["legal_bases"].label_from_instance = lambda b: f"{b}: {b.title}"
        self.fields["source"].queryset = (
            Organisation.objects.order_by("name")
            if user.can("read_all")
            else organisations_of(user).order_by("name")
        )


def confirm_message(confirm: str) -> str:
    """Return the error of an unticked box: "I have checked X" asks "Confirm that you have checked X"."""
    if confirm.startswith("I "):
        return f"Confirm that you {confirm[2:]}"
    return f"Tick the box to confirm: {confirm}"


def transition_form(
    *, text: tuple[str, str, str | None] | None, confirm: str, data: dict | None = None
) -> forms.Form:
    """Return the confirmation form of one workflow step: a text box and a required tick.

    `text` is (field name, label, the error when it is left empty, or None if optional).
    """
    fields: dict[str, forms.Field] = {}
    if text is not None:
        name, label, missing = text
        fields[name] = forms.CharField(
            label=label,
            required=missing is not None,
            max_length=2000,
            widget=forms.Textarea(attrs={"rows": 3}),
            error_messages={"required": missing or ""},
        )
    fields["confirm"] = forms.BooleanField(
        label=confirm,
        required=True,
        error_messages={"required": confirm_message(confirm)},
    )
    return type("TransitionForm", (forms.Form,), fields)(data)


# --- assurance ---------------------------------------------------------------------------
YES_NO = [("yes", "Yes"), ("no", "No")]


class OrganisationAssuranceForm(PortalForm):
    """An organisation's DSPT status and ICO registration (the service validates them)."""

    dspt_status = forms.ChoiceField(
        label="DSPT status",
        choices=DSPTStatus.choices,
        widget=forms.RadioSelect,
        help_text="As published by the Data Security and Protection Toolkit.",
    )
    dspt_year = forms.CharField(
        label="DSPT assessment year",
        required=False,
        max_length=7,
        help_text="The assessment year the status is for, e.g. 2025-26.",
    )
    dspt_published_on = DateField(
        label="DSPT published on", required=False, past="today", help_text="For example, 30 6 2026"
    )
    ico_registration_number = forms.CharField(
        label="ICO registration number",
        required=False,
        max_length=12,
        help_text="For example, ZA123456.",
    )
    ico_registration_expires_on = DateField(
        label="ICO registration expires on",
        required=False,
        help_text="The day the data protection fee runs out, for example 31 3 2027",
    )

    def clean_ico_registration_number(self) -> str:
        return self.cleaned_data["ico_registration_number"].strip().upper()

    def clean_dspt_year(self) -> str:
        return self.cleaned_data["dspt_year"].strip()


class DocumentField(forms.FileField):
    """The signed document: a PDF (the service checks that it is one)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Signed document (PDF)")
        super().__init__(**kwargs)

    def validate(self, value) -> None:
        super().validate(value)
        if value is not None and value.size > AssuranceDocument.MAX_BYTES:
            raise forms.ValidationError(
                f"The document must be smaller than {AssuranceDocument.MAX_BYTES // 1024**2} MB"
            )


def _flow_choices(field: forms.ModelMultipleChoiceField, programme: Programme) -> None:
    field.queryset = (
        DataFlow.objects.filter(programme=programme)
        .select_related("programme", "source", "destination")
        .order_by("source__name", "destination__name", "pk")
    )
    field.label_from_instance = lambda f: f.choice_label


class DPIAForm(PortalForm):
    """A DPIA's text, dates and flows (its risks are a formset of DPIARiskForm)."""

    title = forms.CharField(label="Title", max_length=200)
    version = forms.CharField(
        label="Version", max_length=20, initial="1.0", help_text="For example, 1.0 or 2.1."
    )
    description = forms.CharField(
        label="Description",
        widget=forms.Textarea,
        max_length=20000,
        help_text="The nature, scope, context and purposes of the processing.",
    )
    necessity = forms.CharField(
        label="Necessity and proportionality",
        widget=forms.Textarea,
        max_length=20000,
        help_text="Why the processing is needed, and why no less would do.",
    )
    data_flows = forms.ModelMultipleChoiceField(
        label="Data flows it covers",
        queryset=DataFlow.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    residual_risk = forms.ChoiceField(
        label="Residual risk",
        choices=DPIA.ResidualRisk.choices,
        widget=forms.RadioSelect,
        help_text="The risk left once the measures are in place. A high one needs the ICO "
        "consulted before sign-off.",
    )
    ico_consulted_on = DateField(label="ICO consulted on", required=False, past="today")
    ico_consultation_outcome = forms.CharField(
        label="Outcome of consulting the ICO",
        widget=forms.Textarea,
        required=False,
        max_length=20000,
    )
    review_date = DateField(label="Review date", help_text="For example, 31 3 2027")
    document = DocumentField()

    def __init__(self, *args, programme: Programme, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _flow_choices(self.fields["data_flows"], programme)


class DPIARiskForm(PortalForm):
    description = forms.CharField(label="Risk", widget=forms.Textarea, max_length=5000)
    likelihood = forms.ChoiceField(
        label="Likelihood", choices=[("", "Choose how likely"), *DPIARisk.Likelihood.choices]
    )
    severity = forms.ChoiceField(
        label="Severity", choices=[("", "Choose how severe"), *DPIARisk.Severity.choices]
    )
    measure = forms.CharField(
        label="Measure against it",
        widget=forms.Textarea,
        max_length=5000,
        help_text="What reduces or removes the risk.",
    )


DPIARiskFormSet = forms.formset_factory(
    DPIARiskForm, extra=2, can_delete=True, max_num=50, validate_max=True
)


class DPOAdviceForm(PortalForm):
    advice = forms.CharField(label="Your advice", widget=forms.Textarea, max_length=20000)
    followed = forms.ChoiceField(
        label="Was your advice followed?", choices=YES_NO, widget=forms.RadioSelect
    )
    not_followed_reason = forms.CharField(
        label="Why was it not followed?",
        widget=forms.Textarea,
        required=False,
        max_length=20000,
        help_text="Needed when the advice was not followed.",
    )


class SharingAgreementForm(PortalForm):
    """A data sharing agreement: parties, flows, purpose, legal bases, dates, document."""

    title = forms.CharField(label="Title", max_length=200)
    reference = forms.CharField(
        label="Reference",
        max_length=100,
        required=False,
        help_text="For example, DSA-NECS-2026-03.",
    )
    version = forms.CharField(
        label="Version", max_length=20, initial="1.0", help_text="For example, 1.0 or 2.1."
    )
    purpose = forms.CharField(label="Purpose", widget=forms.Textarea, max_length=20000)
    parties = forms.ModelMultipleChoiceField(
        label="Parties",
        queryset=Organisation.objects.none(),
        to_field_name="ods_code",
        widget=forms.CheckboxSelectMultiple,
        help_text="Each organisation that signs it; at least two.",
        error_messages={"required": "Choose the parties to the agreement."},
    )
    data_flows = forms.ModelMultipleChoiceField(
        label="Data flows it covers",
        queryset=DataFlow.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    legal_bases = forms.ModelMultipleChoiceField(
        label="Legal bases",
        queryset=LegalBasis.objects.all(),
        to_field_name="code",
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    start_date = DateField(label="Start date", help_text="For example, 1 4 2026")
    review_date = DateField(label="Review date", help_text="On or after the start date.")
    expiry_date = DateField(label="Expiry date", help_text="On or after the review date.")
    document = DocumentField()

    def __init__(self, *args, programme: Programme, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parties"].queryset = Organisation.objects.filter(
            participations__programme=programme
        ).distinct()
        self.fields["parties"].label_from_instance = lambda o: f"{o.name} ({o.ods_code})"
        self.fields["legal_bases"].label_from_instance = lambda b: f"{b}: {b.title}"
        _flow_choices(self.fields["data_flows"], programme)
