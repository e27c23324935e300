from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from consent.models import Type1Event
from governance.models import Programme
from phm_portal.forms import DateField, PortalForm
from phm_portal.lib.nhs_number import InvalidNHSNumber, normalise


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


def _today() -> str:
    """Today as the value of a date input (YYYY-MM-DD)."""
    return timezone.localdate().isoformat()


NHS_NUMBER_HELP = "10 digits, for example 943 476 5919. Spaces are fine."
DATE_HELP = "For example, 31 3 1980"
PATIENT_NHS_NUMBER_ERROR = (
    "Check your NHS number: it has 10 digits and is on letters from the NHS, "
    "the NHS App or a prescription"
)
METHODS = [c for c in Type1Event.Method.choices if c[0] != Type1Event.Method.NOT_RECORDED]


class Type1RecordForm(PortalForm):
    nhs_number = forms.CharField(
        label="NHS number",
        max_length=20,
        help_text=NHS_NUMBER_HELP,
        error_messages={"required": "Enter the NHS number"},
    )
    event = forms.ChoiceField(
        label="What did the patient ask for?",
        choices=[
            ("dissent", "Opt out (Type 1 dissent, SNOMED CT 827241000000103)"),
            ("withdrawal", "Withdraw their opt-out (SNOMED CT 827261000000102)"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Select what the patient asked for"},
    )
    method = forms.ChoiceField(
        label="How did they ask?",
        choices=METHODS,
        widget=forms.RadioSelect,
        error_messages={"required": "Select how the patient asked"},
    )
    recorded_on = DateField(
        label="Date the patient asked",
        initial=_today,
        past="today",
        help_text=DATE_HELP,
        error_messages={"required": "Enter the date the patient asked"},
    )


class LookupForm(PortalForm):
    nhs_number = forms.CharField(
        label="NHS number",
        max_length=20,
        help_text=NHS_NUMBER_HELP,
        error_messages={"required": "Enter the NHS number"},
    )


class ImportForm(PortalForm):
    file = forms.FileField(
        label="CSV file from the practice system",
        help_text="A header line nhs_number,event,recorded_on (method optional); UTF-8.",
        error_messages={"required": "Choose the CSV file from the practice system"},
    )
    partial = forms.BooleanField(
        label="Store the good lines even if some lines are bad", required=False
    )


class ListSizeForm(PortalForm):
    as_of = forms.DateField(
        label="On",
        widget=DateInput(),
        initial=_today,
        error_messages={"required": "Enter the date of the list size"},
    )
    patients = forms.IntegerField(
        label="Registered patients",
        min_value=1,
        error_messages={"required": "Enter the number of registered patients"},
    )


def _earliest_birth() -> dt.date:
    """January 1st, 130 years ago (not today's day: that year may have no 29 February)."""
    return dt.date(timezone.localdate().year - 130, 1, 1)


class PatientRequestForm(PortalForm):
    """A patient's own words: every field says plainly what to do when it is wrong."""

    name = forms.CharField(
        label="Full name", max_length=200, error_messages={"required": "Enter your full name"}
    )
    date_of_birth = DateField(
        label="Date of birth",
        help_text=DATE_HELP,
        past="past",
        earliest=_earliest_birth,
        error_messages={"required": "Enter your date of birth"},
    )
    nhs_number = forms.CharField(
        label="NHS number",
        max_length=20,
        required=False,
        help_text="If you know it: 10 digits, on letters from the NHS or in the NHS App.",
        error_messages={"max_length": PATIENT_NHS_NUMBER_ERROR},
    )
    contact = forms.CharField(
        label="How can the practice contact you?",
        max_length=300,
        help_text="An email address, phone number or postal address, so the practice can "
        "check it is you and tell you when it is done.",
        error_messages={"required": "Enter how the practice can contact you"},
    )

    def clean_nhs_number(self) -> str:
        value = self.cleaned_data["nhs_number"].strip()
        if not value:
            return ""
        try:
            return normalise(value)
        except InvalidNHSNumber:
            raise forms.ValidationError(PATIENT_NHS_NUMBER_ERROR, code="invalid") from None


class RequestRecordForm(PortalForm):
    nhs_number = forms.CharField(
        label="NHS number (verified)",
        max_length=20,
        help_text=NHS_NUMBER_HELP,
        error_messages={"required": "Enter the NHS number you checked"},
    )
    recorded_on = DateField(
        label="Date the patient asked",
        past="today",
        help_text=DATE_HELP,
        error_messages={"required": "Enter the date the patient asked"},
    )


class RequestDeclineForm(PortalForm):
    reason = forms.CharField(
        label="Why is the request declined?",
        max_length=1000,
        help_text="For example: we could not confirm who made the request.",
        error_messages={"required": "Enter why the request is declined"},
    )


class NationalCheckStartForm(PortalForm):
    programme = forms.ModelChoiceField(
        queryset=Programme.objects.order_by("name"),
        to_field_name="slug",
        error_messages={"required": "Select a programme"},
    )


class NationalCheckReturnedForm(PortalForm):
    returned = forms.FileField(
        label="The file the national service returned",
        error_messages={"required": "Choose the file the national service returned"},
    )
    checked_on = forms.DateField(
        label="Date the national service checked it",
        widget=DateInput(),
        initial=_today,
        error_messages={"required": "Enter the date the national service checked it"},
    )
