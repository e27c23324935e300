import pytest
from django.core.management import call_command

from governance.demo import SLUGS
from governance.models import Organisation, Participation, Programme, User
from governance.permissions import organisations_of
from phm_portal.audit import audit_verify


@pytest.fixture
def demo(db, settings):
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo")


def test_the_five_regions_are_loaded_with_their_lengths(demo):
    lengths = dict(Programme.objects.values_list("slug", "length_weeks"))
    assert lengths == {
        "cambridgeshire-peterborough": 22,
        "derby-derbyshire": 22,
        "generic-20-week": 20,
        "devon": None,
        "north-east-lincolnshire": 20,
    }
    assert set(Programme.objects.values_list("status", flat=True)) == {"live"}


def test_each_region_has_its_seed_organisations_in_their_roles(demo):
    def roles(slug):
        return {
            (p.organisation.ods_code, p.role)
            for p in Participation.objects.filter(programme__slug=slug)
        }

    assert {
        ("0AR", "processor"),
        ("OPTUMUK", "processor"),
        ("X26", "data_provider"),
        ("E10000003", "data_provider"),
    } <= roles("cambridgeshire-peterborough")
    assert ("OPTUMUK", "sub_processor") in roles("derby-derbyshire")
    assert ("15N", "processor") in roles("devon")
    assert not any(
        ods == "OPTUMUK" for ods, _ in roles("devon")
    )  # Devon has no commercial processor
    nel = roles("north-east-lincolnshire")
    assert {("03H", "controller"), ("03H", "processor"), ("U81901", "joint_controller")} <= nel
    ccg_processing = Participation.objects.get(
        programme__slug="north-east-lincolnshire", organisation__ods_code="03H", role="processor"
    )
    assert ccg_processing.processes_identifiable_data is False
    optum = Participation.objects.get(
        programme__slug="cambridgeshire-peterborough", organisation__ods_code="OPTUMUK"
    )
    assert optum.responsibilities == ["link", "combine", "analyse"]


def test_devon_states_its_population_and_opt_out_route(demo):
    devon = Programme.objects.get(slug="devon")
    assert devon.population == 1_200_000
    assert devon.type1_opt_out_contact == "practice_dpo"
    assert Programme.objects.get(slug="north-east-lincolnshire").overseas_transfer == "none"


def test_each_region_has_a_few_demo_practices_with_postcodes(demo):
    for slug in SLUGS:
        practices = Organisation.objects.filter(
            participations__programme__slug=slug, kind="gp_practice"
        ).distinct()
        assert practices.count() >= 2, slug
        assert all(p.postcode for p in practices)


def test_demo_users_sign_in_with_the_demo_password_and_are_bound(demo, client):
    for username in ["csu-admin", "csu-admin-2", "auditor"] + [
        f"{r}-{s}" for s in SLUGS for r in ("dpo", "pm")
    ]:
        assert client.login(username=username, password="a-demo-password"), username
    pm = User.objects.get(username="pm-devon")
    assert [o.ods_code for o in organisations_of(pm)] == ["L83901"]
    dpo = User.objects.get(username="dpo-north-east-lincolnshire")
    assert [o.ods_code for o in organisations_of(dpo)] == ["03H"]


def test_load_demo_twice_changes_nothing_and_keeps_the_chain_valid(demo):
    counts = (
        Organisation.objects.count(),
        Programme.objects.count(),
        Participation.objects.count(),
        User.objects.count(),
    )
    call_command("load_demo")
    assert counts == (
        Organisation.objects.count(),
        Programme.objects.count(),
        Participation.objects.count(),
        User.objects.count(),
    )
    assert audit_verify().valid


def test_load_demo_on_a_fresh_database_says_what_it_added(db, settings):
    import io

    settings.DEMO_PASSWORD = "a-demo-password"
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    said = out.getvalue()
    assert f"Demo data loaded: {Organisation.objects.count()} organisations, 5 programmes," in said
    assert "there already" not in said


def test_load_demo_again_says_it_was_all_there_already(demo):
    import io

    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert "Demo data ready: nothing added, all of it was there already (" in out.getvalue()


# --- assurance (issue 17) --------------------------------------------------------------------
def test_every_approved_demo_flow_stands_on_all_its_assurance(demo):
    from governance.assurance import flow_conditions
    from governance.models import DataFlow

    approved = DataFlow.objects.filter(status="approved").select_related("source", "destination")
    assert approved.count() >= 20
    for flow in approved:
        assert [c.detail for c in flow_conditions(flow) if not c.holds] == [], flow


def test_each_region_has_a_dpia_signed_off_by_each_controllers_signatory(demo):
    from governance.models import DPIA

    for slug in SLUGS:
        dpia = DPIA.objects.get(programme__slug=slug)
        assert dpia.status == DPIA.Status.SIGNED_OFF and dpia.signed_off_at is not None
        assert dpia.dpo_advice_by.username == f"dpo-{slug}" and dpia.dpo_advice_followed
        assert dpia.risks.count() == 3
        controllers = {
            p.organisation.ods_code
            for p in Participation.objects.filter(
                programme__slug=slug, role__in=Participation.CONTROLLER_ROLES
            )
        }
        signed = {(s.organisation.ods_code, s.signatory.role) for s in dpia.sign_offs.all()}
        assert signed == {(ods, User.Role.SIGNATORY) for ods in controllers}
        assert all(
            s.organisation in organisations_of(s.signatory)
            for s in dpia.sign_offs.select_related("organisation", "signatory")
        )


def test_every_agreement_is_signed_by_each_party_and_names_the_schedule_1_condition(demo):
    from governance.models import SharingAgreement

    assert SharingAgreement.objects.count() == len(SLUGS) + 1  # and Derby's sub-processing one
    for agreement in SharingAgreement.objects.prefetch_related("parties", "legal_bases"):
        assert agreement.parties.count() >= 2
        for party in agreement.parties.select_related("signatory"):
            assert party.is_signed and party.signatory.role == User.Role.SIGNATORY
        assert "DPA2018-SCH1-P1-2" in {b.code for b in agreement.legal_bases.all()}


def test_every_organisation_meets_the_dspt_this_year_and_is_registered_with_the_ico(demo):
    from django.utils import timezone

    from governance.assurance import dspt_year_current_until

    today = timezone.localdate()
    for org in Organisation.objects.all():
        assert org.dspt_status in ("met", "exceeded"), org
        assert dspt_year_current_until(org.dspt_year) >= today
        assert org.dspt_published_on <= today
        assert org.ico_registration_number.startswith("Z")
        assert org.ico_registration_expires_on > today


def test_one_agreement_expires_within_30_days_and_its_reminder_is_sent(demo):
    import datetime as dt

    from django.utils import timezone

    from governance.models import AssuranceReminder, SharingAgreement

    soon = SharingAgreement.objects.filter(
        expiry_date__gte=timezone.localdate(),
        expiry_date__lte=timezone.localdate() + dt.timedelta(days=30),
    )
    assert [a.programme.slug for a in soon] == ["generic-20-week"]
    reminder = AssuranceReminder.objects.get(subject__startswith=f"agreement:{soon[0].pk}:")
    assert reminder.days_before == 30


def test_one_lapsed_flow_is_suspended_by_the_watch_naming_the_lapse(demo):
    from governance.models import DataFlow
    from phm_portal.models import AuditEvent

    suspended = DataFlow.objects.get(status="suspended")
    assert (
        suspended.programme.slug,
        suspended.source.ods_code,
        suspended.destination.ods_code,
    ) == (
        "derby-derbyshire",
        "0AR",
        "OPTUMUK",
    )
    assert suspended.suspended_by is None
    assert "NECS and Optum sub-processing agreement" in suspended.suspension_reason
    assert "expired on" in suspended.suspension_reason
    event = AuditEvent.objects.get(action="data_flow.suspended", object_id=str(suspended.pk))
    assert event.actor == "system"


def test_the_demo_signatories_sign_in_and_act_for_their_organisations(demo, client):
    from governance.demo import SIGNATORIES, signatory_organisations

    for username, _, _, signs_for in SIGNATORIES:
        assert client.login(username=username, password="a-demo-password"), username
        user = User.objects.get(username=username)
        assert user.role == User.Role.SIGNATORY
        assert sorted(o.ods_code for o in organisations_of(user)) == sorted(
            signatory_organisations(signs_for)
        )


def test_loading_the_demo_again_adds_no_assurance_and_sends_nothing_again(demo):
    from django.core import mail

    from governance.models import DPIA, AssuranceReminder, DataFlow, SharingAgreement

    counts = (DPIA.objects.count(), SharingAgreement.objects.count())
    reminders = AssuranceReminder.objects.count()
    sent = len(mail.outbox)
    call_command("load_demo")
    assert (DPIA.objects.count(), SharingAgreement.objects.count()) == counts
    assert AssuranceReminder.objects.count() == reminders and len(mail.outbox) == sent
    assert DataFlow.objects.filter(status="suspended").count() == 1
    assert audit_verify().valid


def test_load_demo_says_what_the_watch_did(db, settings):
    import io

    settings.DEMO_PASSWORD = "a-demo-password"
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    said = out.getvalue()
    assert "1 suspended, 1 reminder sent." in said
    assert "Suspended data flow #" in said and "sub-processing agreement" in said
    assert "Reminder (30 days): the data sharing agreement expires" in said
