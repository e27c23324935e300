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
