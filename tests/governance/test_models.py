import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from governance import services
from governance.models import Organisation, Participation, Programme
from tests.factories import ParticipationFactory


@pytest.mark.parametrize("code", ["A81001", "15N", "X26", "E10000003"])
def test_valid_ods_codes_are_accepted(db, code):
    org = services.organisation_create(
        actor=None, data={"ods_code": code, "name": "Org", "kind": "ccg"}
    )
    assert Organisation.objects.get(pk=org.pk).ods_code == code


@pytest.mark.parametrize("code", ["AB", "A8100112345", "A81-01", "A81 01"])
def test_bad_ods_codes_are_refused_naming_the_field(db, code):
    with pytest.raises(ValidationError) as exc:
        services.organisation_create(
            actor=None, data={"ods_code": code, "name": "Org", "kind": "ccg"}
        )
    assert "ods_code" in exc.value.message_dict
    assert not Organisation.objects.exists()


def test_ods_codes_are_stored_in_capitals(db):
    org = services.organisation_create(
        actor=None, data={"ods_code": "a81001", "name": "Org", "kind": "gp_practice"}
    )
    assert org.ods_code == "A81001"


def test_the_database_refuses_a_malformed_ods_code_written_around_the_service(db):
    with pytest.raises(IntegrityError):
        Organisation.objects.create(ods_code="a-1", name="Org", kind="ccg")


def test_end_date_is_start_plus_length(db):
    programme = services.programme_create(
        actor=None,
        data={
            "slug": "p",
            "name": "P",
            "region": "R",
            "start_date": dt.date(2026, 9, 7),
            "length_weeks": 22,
        },
    )
    assert programme.end_date == dt.date(2027, 2, 8)


def test_end_date_is_unknown_without_a_length(db):
    programme = services.programme_create(
        actor=None,
        data={
            "slug": "devon",
            "name": "Devon",
            "region": "Devon",
            "start_date": dt.date(2026, 9, 7),
        },
    )
    assert programme.end_date is None


def test_a_programme_without_national_opt_out_must_record_the_exemption(db):
    with pytest.raises(ValidationError) as exc:
        services.programme_create(
            actor=None,
            data={"slug": "p", "name": "P", "region": "R", "national_opt_out_applies": False},
        )
    assert "programme_exemption_when_no_national_opt_out" in str(exc.value)


def test_a_programme_has_one_lead_controller(programme, csu):
    with pytest.raises(IntegrityError):
        ParticipationFactory(
            programme=programme,
            organisation=csu,
            role=Participation.Role.JOINT_CONTROLLER,
            is_lead=True,
        )


def test_only_a_controller_can_lead(db, csu):
    programme = Programme.objects.create(slug="p", name="P", region="R")
    with pytest.raises(IntegrityError):
        ParticipationFactory(
            programme=programme, organisation=csu, role=Participation.Role.PROCESSOR, is_lead=True
        )
