"""Helpers the page views share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from phm_portal.errors import DomainError


def add_service_error(form: forms.Form, exc: DomainError | ValidationError) -> None:
    """Put a service's refusal on the form, on the field it names where the form has it."""
    if isinstance(exc, DomainError):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return
    for field, errors in (
        exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    ):
        form.add_error(field if field in form.fields else None, errors)


DJANGO_REQUIRED = str(forms.Field.default_error_messages["required"])


def required_message(field: forms.Field) -> str:
    """Return the plain message (NHS.UK style) of a required field left empty, by its kind."""
    label = str(field.label or "this").strip().rstrip(":")
    first = label.split(" ", 1)[0]
    # "I have..." and acronyms ("NHS number", "ODS code") keep their capitals.
    keep = first == "I" or (len(first) > 1 and first.isupper())
    what = label if keep else label[:1].lower() + label[1:]
    if isinstance(field, forms.BooleanField):
        return f"Tick the box to confirm: {what}"
    if isinstance(field, (forms.ChoiceField, forms.ModelChoiceField)):
        return f"Select {what}"
    if isinstance(field, forms.FileField):
        return f"Choose {what}"
    return f"Enter {what}"


class PortalForm(forms.Form):
    """Every page form: a required field left empty says what to do, never Django's
    "This field is required." (fields that give their own message keep it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if str(field.error_messages.get("required")) == DJANGO_REQUIRED:
                field.error_messages = {**field.error_messages, "required": required_message(field)}


class DateInputWidget(forms.MultiWidget):
    """The NHS.UK date input: three boxes, Day, Month and Year (templates/includes/form_field.html)."""

    nhsuk_date = True
    parts = (("day", "Day", 2), ("month", "Month", 2), ("year", "Year", 4))

    def __init__(self, attrs: dict | None = None) -> None:
        widgets = {
            name: forms.TextInput(attrs={"inputmode": "numeric", "maxlength": size})
            for name, _, size in self.parts
        }
        super().__init__(widgets, attrs)

    def decompress(self, value: object) -> list:
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                return [None, None, None]
        if isinstance(value, dt.date):
            return [value.day, value.month, value.year]
        return [None, None, None]

    def value_from_datadict(self, data, files, name: str) -> list | str:
        parts = super().value_from_datadict(data, files, name)
        # A whole ISO date under the field's own name is taken too: scripts post it so.
        if not any(parts) and data.get(name):
            return data.get(name)
        return parts

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return name not in data and super().value_omitted_from_data(data, files, name)

    def id_for_label(self, id_: str, part: str = "day") -> str:
        return f"{id_}_{part}" if id_ else id_

    def get_context(self, name: str, value: object, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        for sub, (part, label, size) in zip(
            context["widget"]["subwidgets"], self.parts, strict=True
        ):
            if sub["attrs"].get("id"):
                sub["attrs"]["id"] = self.id_for_label(context["widget"]["attrs"]["id"], part)
            sub["label"] = label
            sub["width"] = size
        return context


class DateField(forms.Field):
    """A date typed in three boxes, with the NHS.UK messages naming what is wrong.

    `past` is "past" (before today), "today" (today or before) or None; `earliest` the
    first date taken. `error_messages["required"]` is the message when all boxes are empty.
    """

    widget = DateInputWidget

    def __init__(
        self,
        *,
        past: str | None = None,
        earliest: Callable[[], dt.date] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.past = past
        self.earliest = earliest

    def _name(self) -> str:
        return str(self.label or "Date")

    def to_python(self, value: object) -> dt.date | None:
        if value in self.empty_values:
            return None
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(
                    f"{self._name()} must be a real date", code="invalid"
                ) from None
        parts = [str(p or "").strip() for p in value]
        if not any(parts):
            return None
        missing = [
            label.lower()
            for (_, label, _), p in zip(DateInputWidget.parts, parts, strict=True)
            if not p
        ]
        if missing:
            raise ValidationError(
                f"{self._name()} must include a {' and '.join(missing)}", code="incomplete"
            )
        if not all(p.isascii() and p.isdigit() for p in parts) or len(parts[2]) != 4:
            raise ValidationError(f"{self._name()} must be a real date", code="invalid")
        day, month, year = (int(p) for p in parts)
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise ValidationError(f"{self._name()} must be a real date", code="invalid") from None

    def validate(self, value: dt.date | None) -> None:
        super().validate(value)
        if value is None:
            return
        today = timezone.localdate()
        if self.past == "past" and value >= today:
            raise ValidationError(f"{self._name()} must be in the past", code="future")
        if self.past == "today" and value > today:
            raise ValidationError(f"{self._name()} must be today or in the past", code="future")
        if self.earliest is not None and value < (first := self.earliest()):
            raise ValidationError(
                f"{self._name()} must be on or after {first.day} {first:%B %Y}", code="too_early"
            )
