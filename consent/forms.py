from __future__ import annotations

from django import forms
from django.utils import timezone

from consent.models import Type1Event
from governance.models import Programme


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


def _today() -> str:
    """Today as the value of a date input (YYYY-MM-DD)."""
    return timezone.localdate().isoformat()


NHS_NUMBER_HELP = "10 digits, for example 943 476 5919. Spaces are fine."
METHODS = [c for c in Type1Event.Method.choices if c[0] != Type1Event.Method.NOT_RECORDED]


class Type1RecordForm(forms.Form):
    nhs_number = forms.CharField(label="NHS number", max_length=20, help_text=NHS_NUMBER_HELP)
    event = forms.ChoiceField(
        label="What did the patient ask for?",
        choices=[
            ("dissent", "Opt out (Type 1 dissent, SNOMED CT 827241000000103)"),
            ("withdrawal", "Withdraw their opt-out (SNOMED CT 827261000000102)"),
        ],
        widget=forms.RadioSelect,
    )
    method = forms.ChoiceField(label="How did they ask?", choices=METHODS, widget=forms.RadioSelect)
    recorded_on = forms.DateField(
        label="Date the patient asked",
        widget=DateInput(),
        initial=_today,
        help_text="For example 2026-11-20.",
    )


class LookupForm(forms.Form):
    nhs_number = forms.CharField(label="NHS number", max_length=20, help_text=NHS_NUMBER_HELP)


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file from the practice system",
        help_text="A header line nhs_number,event,recorded_on (method optional); UTF-8.",
    )
    partial = forms.BooleanField(
        label="Store the good lines even if some lines are bad", required=False
    )


class ListSizeForm(forms.Form):
    as_of = forms.DateField(label="On", widget=DateInput(), initial=_today)
    patients = forms.IntegerField(label="Registered patients", min_value=1)


class PatientRequestForm(forms.Form):
    name = forms.CharField(label="Full name", max_length=200)
    date_of_birth = forms.DateField(
        label="Date of birth", widget=DateInput(), help_text="For example 1970-03-31."
    )
    nhs_number = forms.CharField(
        label="NHS number",
        max_length=20,
        required=False,
        help_text="If you know it: 10 digits, on letters from the NHS or in the NHS App.",
    )
    contact = forms.CharField(
        label="How can the practice contact you?",
        max_length=300,
        help_text="An email address, phone number or postal address, so the practice can "
        "check it is you and tell you when it is done.",
    )


class RequestRecordForm(forms.Form):
    nhs_number = forms.CharField(
        label="NHS number (verified)", max_length=20, help_text=NHS_NUMBER_HELP
    )
    recorded_on = forms.DateField(label="Date the patient asked", widget=DateInput())


class RequestDeclineForm(forms.Form):
    reason = forms.CharField(
        label="Why is the request declined?",
        max_length=1000,
        help_text="For example: we could not confirm who made the request.",
    )


class NationalCheckStartForm(forms.Form):
    programme = forms.ModelChoiceField(
        queryset=Programme.objects.order_by("name"), to_field_name="slug"
    )


class NationalCheckReturnedForm(forms.Form):
    returned = forms.FileField(label="The file the national service returned")
    checked_on = forms.DateField(
        label="Date the national service checked it", widget=DateInput(), initial=_today
    )
