from __future__ import annotations

from django import forms

from governance.models import Organisation, User


class UserCreateForm(forms.Form):
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
