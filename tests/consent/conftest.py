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


# --- MESH: NHS England's mesh-sandbox as a real local server (tests/consent/mesh.py) ---------
@pytest.fixture(scope="session")
def mesh_sandbox(tmp_path_factory):
    """A mesh-sandbox server for the whole run (its own process, its mailboxes in a folder)."""
    from tests.consent.mesh import MeshSandbox

    sandbox = MeshSandbox(tmp_path_factory.mktemp("mesh")).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def mesh(mesh_sandbox, settings):
    """The portal configured for the sandbox, both inboxes empty; yields the sandbox."""
    from tests.consent.mesh import NDOP_MAILBOX, PORTAL_MAILBOX

    for mailbox in (PORTAL_MAILBOX, NDOP_MAILBOX):
        with mesh_sandbox.client(mailbox) as client:
            for message_id in client.list_messages():
                client.acknowledge_message(message_id)
    for name, value in mesh_sandbox.settings().items():
        setattr(settings, name, value)
    return mesh_sandbox


@pytest.fixture
def national_service(mesh):
    """The stand-in national service, answering files in the sandbox when asked."""
    from tests.consent.mesh import NationalServiceStandIn

    return NationalServiceStandIn(mesh)
