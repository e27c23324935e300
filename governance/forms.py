from __future__ import annotations

from django import forms

from governance.models import DataFlow, LegalBasis, Organisation, Programme, User
from governance.permissions import organisations_of, programmes_of
from phm_portal.forms import PortalForm


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
