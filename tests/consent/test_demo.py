from io import StringIO

from django.core.management import call_command

from consent.models import Type1Event
from consent.selectors import nhs_numbers_of, type1_current


def test_the_demo_records_synthetic_opt_outs_at_each_demo_practice_once(db, settings, client):
    settings.DEMO_PASSWORD = "a-demo-password"
    call_command("load_demo", stdout=StringIO())
    count = Type1Event.objects.count()
    assert count > 0
    numbers = nhs_numbers_of(Type1Event.objects.values_list("patient_id", flat=True))
    assert all(n.startswith("999") for n in numbers.values())
    call_command("load_demo", stdout=StringIO())
    assert Type1Event.objects.count() == count
    practice = Type1Event.objects.first().practice
    assert type1_current(practice, status="opted_out").exists()
    client.login(username="pm-devon", password="a-demo-password")
    assert "999" in client.get("/practices/L83901/opt-outs/").content.decode()
