"""Fill an NHS.UK date input (three boxes, Day, Month and Year) the way a person does."""

from __future__ import annotations

import datetime as dt


def fill_date(page, legend: str, day: dt.date | tuple[str, str, str]) -> None:
    """Type a date into the Day, Month and Year boxes of the group named `legend`."""
    parts = (str(day.day), str(day.month), str(day.year)) if isinstance(day, dt.date) else day
    group = page.get_by_role("group", name=legend)
    for label, value in zip(("Day", "Month", "Year"), parts, strict=True):
        group.get_by_label(label, exact=True).fill(value)
