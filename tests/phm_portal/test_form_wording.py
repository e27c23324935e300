"""No page form says Django's "This field is required.": each says what to do."""

from __future__ import annotations

import importlib
import inspect

from django import forms

from phm_portal.forms import PortalForm

FORM_MODULES = ("consent.forms", "governance.forms", "datasets.views", "destruction.views")


class Example(PortalForm):
    name = forms.CharField(label="Full name")
    practice = forms.ChoiceField(label="The practice", choices=[("a", "A")])
    upload = forms.FileField(label="The file")
    agree = forms.BooleanField(label="I have read the notice")
    number = forms.CharField(label="NHS number")
    own = forms.CharField(label="Own", error_messages={"required": "Say something."})


def test_an_empty_form_says_what_to_do_for_each_kind_of_field():
    form = Example(data={})
    assert not form.is_valid()
    assert form.errors == {
        "name": ["Enter full name"],
        "practice": ["Select the practice"],
        "upload": ["Choose the file"],
        "agree": ["Tick the box to confirm: I have read the notice"],
        "number": ["Enter NHS number"],
        "own": ["Say something."],
    }


def test_every_page_form_is_a_portal_form():
    found = []
    for name in FORM_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, forms.BaseForm) and cls.__module__ == name:
                found.append(cls)
                assert issubclass(cls, PortalForm), f"{name}.{cls.__name__}"
    assert len(found) >= 14
