"""The daily assurance watch: suspend a flow whose assurance lapsed, remind before it does."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from governance.assurance import failing, flow_conditions
from governance.models import (
    DPIA,
    AssuranceReminder,
    DataFlow,
    DSPTStatus,
    Organisation,
    SharingAgreement,
    SharingAgreementParty,
    User,
)
from governance.services.watch import (
    assurance_reminders_send,
    assurance_watch,
    data_flow_suspend_lapsed,
)
from phm_portal.audit import audit_verify
from phm_portal.models import AuditEvent
from tests.factories import DataFlowFactory, UserFactory

TODAY = dt.date(2026, 11, 2)  # DSPT 2025-26 counts until 30 June 2027: 240 days on


def current_dspt_year(today: dt.date) -> str:
    start = today.year - 1 if today.month >= 7 else today.year - 2
    return f"{start}-{(start + 1) % 100:02d}"


def assure(flow: DataFlow, *, today: dt.date = TODAY, expiry_in: int = 365) -> SharingAgreement:
    """Stand the flow on a signed-off DPIA, a signed agreement, DSPT met and ICO in date."""
    signatory = User.objects.filter(role=User.Role.SIGNATORY).first() or UserFactory(
        username="siro", role=User.Role.SIGNATORY
    )
    dpia = DPIA.objects.filter(programme=flow.programme).first()
    if dpia is None:
        dpia = DPIA.objects.create(
            programme=flow.programme,
            title="Testshire PHM DPIA",
            description="Linking GP records to plan services.",
            necessity="Pseudonymised data only leaves the CSU.",
            review_date=today + dt.timedelta(days=200),
            status=DPIA.Status.SIGNED_OFF,
            signed_off_at=timezone.now(),
        )
    dpia.data_flows.add(flow)
    agreement = SharingAgreement.objects.filter(programme=flow.programme).first()
    if agreement is None:
        agreement = SharingAgreement.objects.create(
            programme=flow.programme,
            title="Testshire data sharing agreement",
            purpose="Population health management.",
            start_date=today - dt.timedelta(days=60),
            review_date=today + dt.timedelta(days=min(30, expiry_in)),
            expiry_date=today + dt.timedelta(days=expiry_in),
        )
    agreement.data_flows.add(flow)
    for n, organisation in enumerate((flow.source, flow.destination)):
        SharingAgreementParty.objects.get_or_create(
            agreement=agreement,
            organisation=organisation,
            defaults={"signatory": signatory, "signed_on": today - dt.timedelta(days=50)},
        )
        Organisation.objects.filter(pk=organisation.pk).update(
            dspt_status=DSPTStatus.MET,
            dspt_year=current_dspt_year(today),
            dspt_published_on=dt.date(today.year, 6, 20),
            ico_registration_number=organisation.ico_registration_number or f"ZA12345{n}",
            ico_registration_expires_on=today + dt.timedelta(days=300),
        )
    flow.refresh_from_db()
    flow.source.refresh_from_db()
    flow.destination.refresh_from_db()
    return agreement


@pytest.fixture
def flow(programme, practice_a, csu):
    """Practice A's approved GP flow to the CSU, standing on all its assurance."""
    Organisation.objects.filter(pk=practice_a.pk).update(dpo_email="dpo@practice-a.example.nhs.uk")
    Organisation.objects.filter(pk=csu.pk).update(dpo_email="dpo@necs.example.nhs.uk")
    flow = DataFlowFactory(
        programme=programme,
        source=practice_a,
        destination=csu,
        status=DataFlow.Status.APPROVED,
    )
    assure(flow)
    return flow


def _status(flow: DataFlow) -> str:
    return DataFlow.objects.values_list("status", flat=True).get(pk=flow.pk)


# --- suspending ---------------------------------------------------------------------------
def test_a_flow_whose_conditions_hold_is_untouched(flow, admin):
    report = assurance_watch(today=TODAY)
    assert report.checked == 1 and report.suspended == [] and report.reminders == []
    assert _status(flow) == DataFlow.Status.APPROVED
    assert not AuditEvent.objects.filter(action="data_flow.suspended").exists()
    assert mail.outbox == []


def _lapse_agreement(flow):
    SharingAgreement.objects.filter(data_flows=flow).update(
        review_date=TODAY - dt.timedelta(days=10), expiry_date=TODAY - dt.timedelta(days=1)
    )
    return "expired on 1 November 2026"


def _lapse_dpia(flow):
    DPIA.objects.filter(data_flows=flow).update(
        review_date=TODAY - dt.timedelta(days=settings.DPIA_REVIEW_GRACE_DAYS + 1)
    )
    return "was due for review on 2 October 2026, more than 30 days ago"


def _dspt_not_met(flow):
    Organisation.objects.filter(pk=flow.source_id).update(dspt_status=DSPTStatus.APPROACHING)
    return "Approaching Standards for 2025-26; Standards Met or Exceeded is needed"


def _dspt_year_gone(flow):
    Organisation.objects.filter(pk=flow.destination_id).update(dspt_year="2023-24")
    return "Standards Met for 2023-24, no longer current"


def _ico_expired(flow):
    Organisation.objects.filter(pk=flow.destination_id).update(
        ico_registration_expires_on=TODAY - dt.timedelta(days=3)
    )
    return "expired on 30 October 2026"


@pytest.mark.parametrize(
    "lapse, condition",
    [
        (_lapse_agreement, "sharing_agreement"),
        (_lapse_dpia, "dpia"),
        (_dspt_not_met, "source_dspt"),
        (_dspt_year_gone, "destination_dspt"),
        (_ico_expired, "destination_ico"),
    ],
)
def test_each_kind_of_lapse_suspends_the_flow_naming_it(flow, lapse, condition):
    words = lapse(flow)
    report = assurance_watch(today=TODAY)
    flow.refresh_from_db()
    assert flow.status == DataFlow.Status.SUSPENDED
    assert flow.suspended_by is None and flow.suspended_at is not None
    assert words in flow.suspension_reason
    assert flow.suspended_at is not None
    assert [s.conditions for s in report.suspended] == [[condition]]


def test_the_suspension_is_audited_as_done_by_the_system(flow):
    _lapse_agreement(flow)
    assurance_watch(today=TODAY)
    event = AuditEvent.objects.get(action="data_flow.suspended", object_id=str(flow.pk))
    assert event.actor == "system"
    assert event.details["by"] == "assurance watch"
    assert event.details["conditions"] == ["sharing_agreement"]
    assert event.details["from"] == "approved" and event.details["to"] == "suspended"
    assert "expired on 1 November 2026" in event.details["reason"]
    assert audit_verify().valid


def test_the_csu_admins_and_both_organisations_dpos_are_told(
    flow, admin, admin2, dpo_a, alice, practice_b
):
    other_dpo = UserFactory(username="dpo-b", role=User.Role.DPO, organisations=[practice_b])
    _ico_expired(flow)
    assurance_watch(today=TODAY)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == [
        "csu-admin-2@example.nhs.uk",
        "csu-admin@example.nhs.uk",
        "dpo-a@example.nhs.uk",
        "dpo@necs.example.nhs.uk",
        "dpo@practice-a.example.nhs.uk",
    ]
    assert alice.email not in message.to and other_dpo.email not in message.to
    assert message.subject == f"Data flow #{flow.pk} suspended: its assurance lapsed"
    assert "ICO registration ZA123451 expired on 30 October 2026" in message.body
    assert f"/data-flows/{flow.pk}/" in message.body


def test_a_flow_of_an_ended_programme_is_left_alone(flow, programme):
    type(programme).objects.filter(pk=programme.pk).update(status="ended")
    _lapse_agreement(flow)
    assert assurance_watch(today=TODAY).checked == 0
    assert _status(flow) == DataFlow.Status.APPROVED


def test_two_watchers_at_once_suspend_the_flow_once(flow, admin):
    _lapse_agreement(flow)
    lapsed = failing(flow_conditions(flow, today=TODAY))
    # Both read the flow as approved; the first claims the row, the second finds it gone.
    first = data_flow_suspend_lapsed(flow=flow, lapsed=lapsed, today=TODAY)
    stale = DataFlow.objects.get(pk=flow.pk)
    stale.status = DataFlow.Status.APPROVED
    second = data_flow_suspend_lapsed(flow=stale, lapsed=lapsed, today=TODAY)
    assert first is not None and second is None
    assert AuditEvent.objects.filter(action="data_flow.suspended").count() == 1
    assert len(mail.outbox) == 1
    assert assurance_watch(today=TODAY).suspended == []


def test_a_mail_server_that_fails_does_not_stop_the_watch(flow, programme, practice_b, csu):
    from unittest import mock

    second = DataFlowFactory(
        programme=programme, source=practice_b, destination=csu, status=DataFlow.Status.APPROVED
    )
    assure(second)
    _ico_expired(flow)  # the CSU's registration: both flows end there
    with mock.patch("governance.services.watch.send_mail", side_effect=OSError("no server")):
        report = assurance_watch(today=TODAY)
    assert [s.flow.pk for s in report.suspended] == [flow.pk, second.pk]
    assert _status(second) == DataFlow.Status.SUSPENDED


# --- reminders ------------------------------------------------------------------------------
def _reminders(today):
    return [(r.about.split(":")[0], r.days_before) for r in assurance_watch(today=today).reminders]


def test_reminders_go_90_and_30_days_before_the_agreement_expires_once_each(flow, admin, dpo_a):
    SharingAgreement.objects.filter(data_flows=flow).update(
        review_date=TODAY, expiry_date=TODAY + dt.timedelta(days=89)
    )  # it stops holding on its 90th day from today
    assert _reminders(TODAY) == [("agreement", 90)]
    assert _reminders(TODAY) == []
    assert _reminders(TODAY + dt.timedelta(days=30)) == []
    assert _reminders(TODAY + dt.timedelta(days=60)) == [("agreement", 30)]
    assert _reminders(TODAY + dt.timedelta(days=61)) == []
    assert sorted(AssuranceReminder.objects.values_list("days_before", flat=True)) == [30, 90]
    assert len(mail.outbox) == 2
    first = mail.outbox[0]
    assert first.subject == "In 90 days the data sharing agreement expires: 1 data flow will stop"
    assert "from 31 January 2027 the assurance watch will suspend" in first.body
    assert sorted(first.to) == [
        "csu-admin@example.nhs.uk",
        "dpo-a@example.nhs.uk",
        "dpo@necs.example.nhs.uk",
        "dpo@practice-a.example.nhs.uk",
    ]
    assert _status(flow) == DataFlow.Status.APPROVED
    events = AuditEvent.objects.filter(action="assurance.reminder_sent")
    assert [(e.object_type, e.actor, e.details["days_before"]) for e in events.order_by("seq")] == [
        ("governance.sharingagreement", "system", 90),
        ("governance.sharingagreement", "system", 30),
    ]


def test_a_lapse_first_seen_within_30_days_gets_only_the_30_day_reminder(flow):
    Organisation.objects.filter(pk=flow.source_id).update(
        ico_registration_expires_on=TODAY + dt.timedelta(days=10)
    )
    assert _reminders(TODAY) == [("ico", 30)]


def test_a_dpia_review_falling_due_is_reminded(flow):
    # Review due in 50 days: with the 30 days' grace it stops holding in 80.
    DPIA.objects.filter(data_flows=flow).update(review_date=TODAY + dt.timedelta(days=50))
    assert _reminders(TODAY) == [("dpia", 90)]


def test_the_end_of_a_dspt_year_is_reminded_for_each_organisation(flow):
    # 2025-26 counts until 30 June 2027: 76 days on from 15 April.
    reminders = _reminders(dt.date(2027, 4, 15))
    assert reminders.count(("dspt", 90)) == 2


def test_one_reminder_per_agreement_names_every_flow_it_covers(flow, programme, practice_b, csu):
    second = DataFlowFactory(
        programme=programme, source=practice_b, destination=csu, status=DataFlow.Status.APPROVED
    )
    assure(second)
    SharingAgreement.objects.filter(data_flows=flow).update(
        review_date=TODAY, expiry_date=TODAY + dt.timedelta(days=20)
    )
    report = assurance_watch(today=TODAY)
    assert [(r.days_before, [f.pk for f in r.flows]) for r in report.reminders] == [
        (30, [flow.pk, second.pk])
    ]
    assert len(mail.outbox) == 1
    assert f"#{flow.pk}" in mail.outbox[0].body and f"#{second.pk}" in mail.outbox[0].body


def test_two_watchers_at_once_send_a_reminder_once(flow):
    SharingAgreement.objects.filter(data_flows=flow).update(
        review_date=TODAY, expiry_date=TODAY + dt.timedelta(days=20)
    )
    flows = [DataFlow.objects.select_related("source", "destination").get(pk=flow.pk)]
    assert len(assurance_reminders_send(flows=flows, today=TODAY)) == 1
    assert assurance_reminders_send(flows=flows, today=TODAY) == []
    assert AssuranceReminder.objects.count() == 1 and len(mail.outbox) == 1


# --- the command and the beat -----------------------------------------------------------------
def test_check_assurance_prints_what_it_did(flow):
    _lapse_agreement(flow)
    out = io.StringIO()
    call_command("check_assurance", "--today", TODAY.isoformat(), stdout=out)
    said = out.getvalue()
    assert (
        "Assurance checked on 2 November 2026: 1 approved flow, 1 suspended, 0 reminders sent."
        in said
    )
    assert f"Suspended data flow #{flow.pk} (Practice A Surgery → " in said
    assert "expired on 1 November 2026" in said
    assert _status(flow) == DataFlow.Status.SUSPENDED


def test_check_assurance_with_nothing_to_do_says_so(flow):
    out = io.StringIO()
    call_command("check_assurance", "--today", TODAY.isoformat(), stdout=out)
    assert out.getvalue().strip() == (
        "Assurance checked on 2 November 2026: 1 approved flow, 0 suspended, 0 reminders sent."
    )


def test_check_assurance_refuses_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--today takes a date"):
        call_command("check_assurance", "--today", "tomorrow")


def test_beat_runs_the_watch_daily(flow):
    from governance import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["assurance-watch"]
    assert entry == {"task": "governance.tasks.assurance_watch", "schedule": 24 * 3600}
    Organisation.objects.filter(pk=flow.destination_id).update(
        ico_registration_expires_on=timezone.localdate() - dt.timedelta(days=1)
    )
    result = tasks.assurance_watch()
    assert [s["flow"] for s in result["suspended"]] == [flow.pk]


# --- data stops: uploads and jobs refused naming the lapse ---------------------------------
def _upload(client, flow):
    from tests.datasets.conftest import HEADER, MAPPING, csv_file

    row = "9434765919,Ann,1960-03-01,CB1 2AB,A81001,XaZ89\n"
    return client.post(
        "/api/v1/datasets/",
        {"file": csv_file(HEADER + row), "data_flow": flow.pk, "mapping": MAPPING},
        format="multipart",
    )


def test_an_upload_on_a_flow_the_watch_suspended_is_refused_naming_the_lapse(api, alice, flow):
    from datasets.models import Dataset

    _lapse_agreement(flow)
    assurance_watch(today=TODAY)
    response = _upload(api(alice), flow)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith("Data may move only on an approved flow; this one is suspended.")
    assert "Agreement “Testshire data sharing agreement” v1.0 expired on 1 November 2026." in detail
    assert not Dataset.objects.exists()


@pytest.fixture
def dataset(api, alice, flow):
    from datasets.models import Dataset

    response = _upload(api(alice), flow)
    assert response.status_code == 201, response.json()
    return Dataset.objects.get(pk=response.json()["id"])


def test_a_job_on_a_flow_the_watch_suspended_is_refused_naming_the_lapse(api, admin, dataset):
    from datasets.models import Job

    _dspt_not_met(dataset.data_flow)
    assurance_watch(today=TODAY)
    response = api(admin).post(f"/api/v1/datasets/{dataset.pk}/pseudonymise/")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith("The flow is suspended: no data moves on it now. Practice A Surgery:")
    assert "Approaching Standards for 2025-26; Standards Met or Exceeded is needed" in detail
    assert not Job.objects.exists()


def test_the_extract_page_names_the_lapse_when_a_job_is_refused(client, admin, dataset):
    _ico_expired(dataset.data_flow)
    assurance_watch(today=TODAY)
    client.force_login(admin)
    page = client.post(f"/datasets/{dataset.pk}/pseudonymise/", follow=True).content.decode()
    assert "The flow is suspended: no data moves on it now." in page
    assert "ICO registration ZA123451 expired on 30 October 2026" in page


def test_the_commands_reminder_line_says_flow_or_flows_as_many_as_there_are():
    from governance.services.watch import Reminder, WatchReport

    report = WatchReport(today=dt.date(2026, 11, 26))
    one, two = DataFlow(pk=10), DataFlow(pk=11)
    lapses = dt.date(2027, 1, 1)
    report.reminders = [
        Reminder("organisation:1:ico", 30, lapses, "the ICO registration expires", [one], []),
        Reminder("agreement:1", 90, lapses, "the data sharing agreement expires", [one, two], []),
    ]
    lines = report.lines()
    assert "from 1 January 2027 data flow #10 stops unless it is renewed." in lines[1]
    assert "from 1 January 2027 data flows #10, #11 stop unless it is renewed." in lines[2]
