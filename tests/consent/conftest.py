"""Fixtures of the consent tests: synthetic NHS numbers, an approved flow, checks."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from consent import services
from governance.models import DataFlow
from phm_portal.lib.nhs_number import synthetic
from tests.factories import DataFlowFactory

TEST_NUMBER = "9434765919"  # the documented test number


@pytest.fixture
def numbers():
    """Return a function giving n distinct synthetic NHS numbers (999 range), reproducibly."""
    rng = random.Random(20261122)

    def make(n: int) -> list[str]:
        out: set[str] = set()
        while len(out) < n:
            out.add(synthetic(rng))
        return sorted(out)

    return make


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def flow(programme, practice_a, csu, admin):
    return DataFlowFactory(
        programme=programme,
        source=practice_a,
        destination=csu,
        data_categories=["gp"],
        identifiability=DataFlow.Identifiability.IDENTIFIABLE,
        status=DataFlow.Status.APPROVED,
        created_by=admin,
    )


@pytest.fixture
def record(alice, practice_a):
    """Return a function recording a Type 1 event at practice A as alice."""

    def make(
        number: str, event: str = "dissent", *, on: dt.date | None = None, practice=None, by=None
    ):
        return services.type1_opt_out_record(
            actor=by or alice,
            practice=practice or practice_a,
            nhs_number=number,
            event=event,
            method="letter",
            recorded_on=on or timezone.localdate() - dt.timedelta(days=3),
        )

    return make


def dat(numbers: list[str], *, crlf: bool = True) -> bytes:
    end = "\r\n" if crlf else "\n"
    return "".join(n + end for n in numbers).encode()


@pytest.fixture
def national_check(admin, programme):
    """Return a function recording a complete national check of the programme from both files."""

    def make(submitted: list[str], returned: list[str], *, checked_on: dt.date | None = None):
        return services.national_check_import(
            actor=admin,
            programme=programme,
            submitted=dat(submitted),
            returned=dat(returned),
            checked_on=checked_on or timezone.localdate(),
        )

    return make
