"""factory_boy factories for the domain; synthetic data only."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from governance.models import DataFlow, Organisation, Participation, Programme, User
from governance.permissions import bind


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("ods_code",)

    ods_code = factory.Sequence(lambda n: f"Z{n:05d}")
    name = factory.Sequence(lambda n: f"Test Organisation {n}")
    kind = Organisation.Kind.CSU


class PracticeFactory(OrganisationFactory):
    ods_code = factory.Sequence(lambda n: f"Y{n:05d}")
    name = factory.Sequence(lambda n: f"Test Surgery {n}")
    kind = Organisation.Kind.GP_PRACTICE
    postcode = "AB1 2CD"


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Programme

    slug = factory.Sequence(lambda n: f"programme-{n}")
    name = factory.Sequence(lambda n: f"Test Programme {n}")
    region = "Testshire"
    start_date = dt.date(2026, 9, 7)
    length_weeks = 20
    end_date = factory.LazyAttribute(
        lambda o: Programme.compute_end_date(o.start_date, o.length_weeks)
    )
    status = Programme.Status.LIVE
    purposes = ["planning services"]


class ParticipationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participation

    programme = factory.SubFactory(ProgrammeFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Participation.Role.CONTROLLER


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.nhs.uk")
    role = User.Role.PRACTICE_MANAGER
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def organisations(self, create, extracted, **kwargs):
        for organisation in extracted or []:
            bind(self, organisation)


# --- data flows (issue 3) ---
class DataFlowFactory(factory.django.DjangoModelFactory):
    """A flow written straight to the table (tests of reads); the services make real ones."""

    class Meta:
        model = DataFlow

    programme = factory.SubFactory(ProgrammeFactory)
    source = factory.SubFactory(PracticeFactory)
    destination = factory.SubFactory(OrganisationFactory)
    data_categories = factory.LazyFunction(lambda: ["gp"])
    identifiability = DataFlow.Identifiability.IDENTIFIABLE
    dpia_reference = "DPIA-TEST-01"
    dsa_reference = "DSA-TEST-01"
    status = DataFlow.Status.DRAFT
    # A flow past "submitted" was decided at some time (a database constraint says so).
    submitted_at = factory.LazyAttribute(
        lambda o: None if o.status == DataFlow.Status.DRAFT else timezone.now()
    )
    decided_at = factory.LazyAttribute(
        lambda o: (
            None
            if o.status in (DataFlow.Status.DRAFT, DataFlow.Status.SUBMITTED)
            else timezone.now()
        )
    )
    decision_comment = factory.LazyAttribute(
        lambda o: "Not this time." if o.status == DataFlow.Status.REJECTED else ""
    )
