"""The patient's request form and the staff date boxes: every error at once, in plain words."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from consent.models import Type1Event, Type1Request
from phm_portal.forms import DateField
from tests.consent.conftest import TEST_NUMBER

PUBLIC = "/practices/A81001/"
RECORD = "/practices/A81001/opt-outs/record/"


def words(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(" ".join(text.split()))


def summary(response) -> str:
    page = response.content.decode()
    start = page.index('class="nhsuk-error-summary"')
    return page[start : page.index("</ul>", start)]


def birth(day: object, month: object, year: object) -> dict:
    return {"date_of_birth_day": day, "date_of_birth_month": month, "date_of_birth_year": year}


def post(client, **fields):
    data = {"name": "Jo Example", "contact": "jo@example.com", **birth(31, 3, 1980), **fields}
    return client.post(PUBLIC, data)


def test_one_submit_shows_every_error_at_once_in_plain_words(client, practice_a):
    future = dt.date.today() + dt.timedelta(days=3)
    response = post(
        client, name="", nhs_number="9434765918", **birth(future.day, future.month, future.year)
    )
    assert response.status_code == 400
    errors = summary(response)
    assert "There is a problem" in errors
    assert '<a href="#id_name">Enter your full name</a>' in errors
    assert '<a href="#id_date_of_birth_day">Date of birth must be in the past</a>' in errors
    assert (
        '<a href="#id_nhs_number">Check your NHS number: it has 10 digits and is on letters '
        "from the NHS, the NHS App or a prescription</a>"
    ) in errors
    text = words(response)
    # Each message shows twice: in the summary and beside its field.
    assert text.count("Enter your full name") == 2
    assert text.count("Date of birth must be in the past") == 2
    for jargon in ("This field is required", "check digit", "Modulus", "Full name:"):
        assert jargon not in text
    assert not Type1Request.objects.exists()


def test_an_empty_form_names_each_missing_answer(client, practice_a):
    response = client.post(PUBLIC, {})
    assert response.status_code == 400
    text = words(response)
    assert "Enter your full name" in text
    assert "Enter your date of birth" in text
    assert "Enter how the practice can contact you" in text
    assert "This field is required" not in text
    assert "How can the practice contact you?:" not in text


def test_the_date_of_birth_is_three_boxes_with_a_plain_example(client, practice_a):
    page = client.get(PUBLIC).content.decode()
    for part in ("day", "month", "year"):
        assert f'name="date_of_birth_{part}"' in page and f'id="id_date_of_birth_{part}"' in page
    assert "For example, 31 3 1980" in page
    assert "1970-03-31" not in page and 'type="date"' not in page


def test_a_request_with_31_3_1980_is_taken(client, practice_a):
    response = post(client, nhs_number="943 476 5919")
    assert response.status_code == 302
    assert Type1Request.objects.count() == 1


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("31", "", "1980", "Date of birth must include a month"),
        ("", "", "1980", "Date of birth must include a day and month"),
        ("31", "3", "", "Date of birth must include a year"),
        ("31", "2", "1980", "Date of birth must be a real date"),
        ("31", "13", "1980", "Date of birth must be a real date"),
        ("3l", "3", "1980", "Date of birth must be a real date"),
        ("31", "3", "80", "Date of birth must be a real date"),
        ("1", "1", "1800", "Date of birth must be on or after 1 January"),
    ],
)
def test_a_bad_date_of_birth_is_refused_with_what_is_wrong(
    client, practice_a, day, month, year, message
):
    response = post(client, **birth(day, month, year))
    assert response.status_code == 400
    assert message in summary(response)
    assert not Type1Request.objects.exists()


def test_the_typed_boxes_come_back_after_an_error(client, practice_a):
    page = post(client, name="", **birth("31", "", "1980")).content.decode()
    assert 'name="date_of_birth_day" type="text" inputmode="numeric" value="31"' in page
    assert 'name="date_of_birth_year" type="text" inputmode="numeric" value="1980"' in page


def test_the_date_field_reads_three_boxes():
    field = DateField(label="Date of birth", past="past")
    assert field.clean(["31", "3", "1980"]) == dt.date(1980, 3, 31)
    assert field.clean([" 1 ", "02", "2000"]) == dt.date(2000, 2, 1)


def test_the_staff_record_form_uses_the_same_date_boxes(client, alice, practice_a):
    client.force_login(alice)
    page = client.get(RECORD).content.decode()
    today = dt.date.today()
    assert f'name="recorded_on_day" type="text" inputmode="numeric" value="{today.day}"' in page
    assert "For example, 31 3 1980" in page and 'type="date"' not in page
    asked = today - dt.timedelta(days=1)
    response = client.post(
        RECORD,
        {
            "nhs_number": TEST_NUMBER,
            "event": "dissent",
            "method": "phone",
            "recorded_on_day": asked.day,
            "recorded_on_month": asked.month,
            "recorded_on_year": asked.year,
        },
    )
    assert response.status_code == 302
    assert Type1Event.objects.get().recorded_on == asked


def test_the_staff_record_form_names_each_missing_answer(client, alice, practice_a):
    client.force_login(alice)
    response = client.post(RECORD, {"recorded_on_day": "5", "recorded_on_year": "2025"})
    assert response.status_code == 400
    errors = summary(response)
    assert '<a href="#id_nhs_number">Enter the NHS number</a>' in errors
    assert '<a href="#id_event_0">Select what the patient asked for</a>' in errors
    assert '<a href="#id_method_0">Select how the patient asked</a>' in errors
    assert '<a href="#id_recorded_on_day">Date the patient asked must include a month</a>' in errors
    assert "This field is required" not in words(response)
    assert not Type1Event.objects.exists()
