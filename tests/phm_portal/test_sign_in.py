"""Sign-in hardening: lockout after repeated failures, the second factor, session expiry."""

import datetime as dt
import re
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from phm_portal.models import AuditEvent
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"  # tests/factories.py
TOKEN_URL = "/api/v1/auth/token/"

pytestmark = pytest.mark.django_db


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows, computed from the device's key."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    """A confirmed authenticator and recovery codes, as the set-up page leaves them."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    recovery = StaticDevice.objects.create(user=user, name="Recovery codes")
    codes = [f"recovery{i:02d}" for i in range(3)]
    for c in codes:
        StaticToken.objects.create(device=recovery, token=c)
    return device, codes


def sign_in(client, username, password=PASSWORD, next_url="/"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password, "next": next_url}
    )


def actions(*names):
    return list(AuditEvent.objects.filter(action__in=names).values_list("action", "actor"))


# --- passwords -------------------------------------------------------------------------
def test_the_portal_stores_passwords_as_argon2_hashes_and_signs_in_with_them(client, settings):
    """Tests hash with a fast hasher (tests/conftest.py); the portal's own setting is this."""
    from phm_portal import settings as portal_settings

    settings.PASSWORD_HASHERS = portal_settings.PASSWORD_HASHERS
    user = UserFactory(username="dora")
    assert user.password.startswith("argon2$argon2id$")
    assert PASSWORD not in user.password
    assert sign_in(client, "dora").status_code == 302


# --- lockout ---------------------------------------------------------------------------
@override_settings(PHM_LOGIN_FAILURE_LIMIT=3)
def test_repeated_failed_sign_ins_on_the_page_lock_the_account_for_a_while(client, alice):
    for _ in range(2):
        response = sign_in(client, "alice", "wrong-password")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = sign_in(client, "alice", "wrong-password")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Signing in is locked for a while" in page and "locked for 15 minutes" in page
    # Locked: even the right password is refused, and nobody is signed in.
    response = sign_in(client, "alice")
    assert response.status_code == 429
    assert client.get("/datasets/")["Location"].startswith("/accounts/login/")
    assert actions("auth.sign_in_failed") == [("auth.sign_in_failed", "alice")] * 3
    assert actions("auth.locked_out") == [("auth.locked_out", "alice")]
    assert actions("auth.sign_in_refused_locked") == [("auth.sign_in_refused_locked", "alice")]
    locked = AuditEvent.objects.get(action="auth.locked_out")
    assert locked.details["via"] == "page" and locked.details["failures"] == 3
    # After the cool-off the account signs in again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))
    response = sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/datasets/").status_code == 200


@override_settings(PHM_LOGIN_FAILURE_LIMIT=3)
def test_repeated_failed_token_requests_lock_the_account_and_are_audited(alice):
    api = APIClient()
    for _ in range(2):
        response = api.post(TOKEN_URL, {"username": "alice", "password": "nope"}, format="json")
        assert response.status_code == 400
        assert "Unable to sign in" in response.json()["non_field_errors"][0]
    response = api.post(TOKEN_URL, {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 429
    assert "locked for 15 minutes" in response.json()["non_field_errors"][0]
    assert response["Retry-After"] == "900"
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 429 and "token" not in response.json()
    locked = AuditEvent.objects.get(action="auth.locked_out")
    assert locked.actor == "alice" and locked.details["via"] == "api"
    assert AuditEvent.objects.filter(action="auth.sign_in_failed", details__via="api").count() == 3
    assert AuditEvent.objects.filter(action="auth.sign_in_refused_locked").count() == 1


@override_settings(PHM_LOGIN_FAILURE_LIMIT=3)
def test_a_locked_account_leaves_other_accounts_at_the_same_address_alone(client, alice, bob):
    # Counted per account and address (tests/phm_portal/test_lockout.py has the rest).
    for _ in range(3):
        sign_in(client, "alice", "guess")
    assert sign_in(client, "alice").status_code == 429
    assert sign_in(client, "bob").status_code == 302


@override_settings(PHM_LOGIN_FAILURE_LIMIT=3)
def test_a_success_before_the_limit_starts_the_count_again(client, alice):
    for _ in range(2):
        sign_in(client, "alice", "typo")
    assert sign_in(client, "alice").status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        sign_in(client, "alice", "typo")
    assert sign_in(client, "alice").status_code == 302


# --- second factor: pages ----------------------------------------------------------------
@override_settings(PHM_REQUIRE_2FA=True)
def test_a_csu_admin_without_a_second_factor_sets_one_up_before_anything_else(client, admin):
    assert sign_in(client, "csu-admin", next_url="/datasets/")["Location"] == "/datasets/"
    response = client.get("/datasets/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/?next=%2Fdatasets%2F"
    assert client.get("/programmes/")["Location"].startswith("/accounts/two-factor/")
    page = client.get(response["Location"]).content.decode()
    assert "Set up two-factor authentication" in page
    assert re.search(
        r'<svg class="portal-qr" role="img" aria-label="QR code"[^>]*>.*<path d="M', page, re.S
    )
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    key = re.search(r'<code class="portal-otp-secret" id="otp-secret">([A-Z2-7 ]+)</code>', page)
    assert key is not None  # the key as text, for typing it in instead of scanning

    wrong = client.post("/accounts/two-factor/", {"code": "000000", "next": "/datasets/"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    time.sleep(1.1)  # after a wrong code the device waits a moment (django-otp throttling)
    response = client.post("/accounts/two-factor/", {"code": code(device), "next": "/datasets/"})
    assert response.status_code == 200
    page = response.content.decode()
    shown = re.findall(r"<li><code>([a-z2-7]+)</code></li>", page)
    assert len(shown) == 10
    assert sorted(shown) == sorted(StaticToken.objects.values_list("token", flat=True))
    assert "They are shown only now" in page
    assert client.get("/datasets/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed
    assert actions("auth.second_factor_set_up") == [("auth.second_factor_set_up", "csu-admin")]
    # Shown once: the set-up page now makes a new key, never the old codes.
    assert shown[0] not in client.get("/accounts/two-factor/").content.decode()


@override_settings(PHM_REQUIRE_2FA=True)
@pytest.mark.parametrize("who", ["admin", "dpo_a"])
def test_sign_in_asks_for_the_code_after_the_password(client, who, request):
    user = request.getfixturevalue(who)
    device, _ = enrol(user)
    sign_in(client, user.username)
    response = client.get("/programmes/")
    assert response["Location"] == "/accounts/two-factor/verify/?next=%2Fprogrammes%2F"
    assert "Enter your one-time code" in client.get(response["Location"]).content.decode()
    bad = client.post("/accounts/two-factor/verify/", {"code": "123456", "next": "/programmes/"})
    assert bad.status_code == 400 and "That code is not right" in bad.content.decode()
    assert client.get("/programmes/").status_code == 302
    time.sleep(1.1)  # after a wrong code the device waits a moment (django-otp throttling)
    good = client.post(
        "/accounts/two-factor/verify/", {"code": code(device), "next": "/programmes/"}
    )
    assert good.status_code == 302 and good["Location"] == "/programmes/"
    assert client.get("/programmes/").status_code == 200
    assert actions("auth.second_factor_failed") == [("auth.second_factor_failed", user.username)]
    assert actions("auth.second_factor_confirmed") == [
        ("auth.second_factor_confirmed", user.username)
    ]


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_recovery_code_works_once(client, admin):
    enrol(admin)
    sign_in(client, "csu-admin")
    response = client.post("/accounts/two-factor/verify/", {"code": "recovery01", "next": "/"})
    assert response.status_code == 302 and client.get("/programmes/").status_code == 200
    event = AuditEvent.objects.get(action="auth.second_factor_confirmed")
    assert event.details == {"with": "recovery code", "recovery_codes_left": 2}
    client.post("/accounts/logout/")
    sign_in(client, "csu-admin")
    again = client.post("/accounts/two-factor/verify/", {"code": "recovery01", "next": "/"})
    assert again.status_code == 400
    assert client.get("/programmes/").status_code == 302


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_stolen_password_cannot_replace_the_second_factor(client, admin):
    enrol(admin)
    sign_in(client, "csu-admin")
    response = client.get("/accounts/two-factor/")
    assert response["Location"].startswith("/accounts/two-factor/verify/")
    assert not TOTPDevice.objects.filter(user=admin, confirmed=False).exists()


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_signed_in_session_without_the_code_cannot_use_the_api(client, admin):
    enrol(admin)
    sign_in(client, "csu-admin")
    response = client.get("/api/v1/me/")
    assert response.status_code == 403
    assert "Two-factor authentication is required" in response.json()["detail"]
    # The API's documentation is a page: it asks for the code like the others.
    assert client.get("/api/docs/")["Location"].startswith("/accounts/two-factor/verify/")


@override_settings(PHM_REQUIRE_2FA=True)
@pytest.mark.parametrize("who", ["alice", "auditor"])
def test_practice_managers_and_auditors_are_not_asked(client, who, request):
    user = request.getfixturevalue(who)
    sign_in(client, user.username)
    assert client.get("/programmes/").status_code == 200
    token = APIClient().post(
        TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert token.status_code == 200 and token.json()["token"]


@override_settings(PHM_REQUIRE_2FA=False)
def test_with_the_second_factor_off_nothing_changes(client, admin):
    enrol(admin)
    sign_in(client, "csu-admin")
    assert client.get("/programmes/").status_code == 200
    token = APIClient().post(
        TOKEN_URL, {"username": "csu-admin", "password": PASSWORD}, format="json"
    )
    assert token.status_code == 200


# --- second factor: API tokens ---------------------------------------------------------
@override_settings(PHM_REQUIRE_2FA=True)
def test_a_token_for_a_csu_admin_needs_a_valid_one_time_code(admin):
    device, _ = enrol(admin)
    api = APIClient()
    body = {"username": "csu-admin", "password": PASSWORD}
    missing = api.post(TOKEN_URL, body, format="json")
    assert missing.status_code == 400 and "token" not in missing.json()
    assert "A one-time code is required" in missing.json()["otp"][0]
    wrong = api.post(TOKEN_URL, {**body, "otp": "000000"}, format="json")
    assert wrong.status_code == 400
    assert "not valid" in wrong.json()["otp"][0]
    time.sleep(1.1)  # after a wrong code the device waits a moment (django-otp throttling)
    good = api.post(TOKEN_URL, {**body, "otp": code(device)}, format="json")
    assert good.status_code == 200
    token = good.json()["token"]
    me = APIClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["username"] == "csu-admin"
    assert (
        AuditEvent.objects.filter(action="auth.second_factor_failed", details__via="api").count()
        == 2
    )


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_recovery_code_gets_a_token_once(dpo_a):
    enrol(dpo_a)
    body = {"username": "dpo-a", "password": PASSWORD, "otp": "recovery02"}
    assert APIClient().post(TOKEN_URL, body, format="json").status_code == 200
    again = APIClient().post(TOKEN_URL, body, format="json")
    assert again.status_code == 400 and "not valid" in again.json()["otp"][0]


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_dpo_without_a_second_factor_is_told_to_set_one_up_first(dpo_a):
    response = APIClient().post(
        TOKEN_URL, {"username": "dpo-a", "password": PASSWORD, "otp": "123456"}, format="json"
    )
    assert response.status_code == 400
    assert "has not set it up yet" in response.json()["otp"][0]


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_wrong_password_is_refused_before_the_code_is_looked_at(admin):
    device, _ = enrol(admin)
    response = APIClient().post(
        TOKEN_URL, {"username": "csu-admin", "password": "nope", "otp": code(device)}, format="json"
    )
    assert response.status_code == 400 and "otp" not in response.json()


def test_the_second_factor_is_on_by_default_outside_the_demo():
    # The suite runs the embedded demo (PHM_DEMO=1): off here; tests/phm_portal/test_settings.py
    # checks production settings turn it on.
    assert settings.DEMO_MODE and not settings.PHM_REQUIRE_2FA


# --- sessions ----------------------------------------------------------------------------
def test_a_session_expires_after_inactivity_and_each_request_renews_it(client, alice):
    assert settings.SESSION_SAVE_EVERY_REQUEST
    sign_in(client, "alice")
    assert client.get("/programmes/").status_code == 200
    session = Session.objects.get()
    expected = timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs((session.expire_date - expected).total_seconds()) < 5
    # Activity moves the expiry on.
    Session.objects.update(expire_date=timezone.now() + dt.timedelta(seconds=60))
    assert client.get("/programmes/").status_code == 200
    assert Session.objects.get().expire_date > timezone.now() + dt.timedelta(seconds=120)
    # Idle past the age: signed out.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get("/programmes/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.fixture
def bob_pm(practice_a):
    return UserFactory(username="bob2", role="practice_manager", organisations=[practice_a])


@override_settings(PHM_REQUIRE_2FA=True)
def test_a_lost_second_factor_is_reset_by_command_and_set_up_again(client, admin):
    from django.core.management import call_command

    enrol(admin)
    call_command("reset_second_factor", "csu-admin")
    assert not TOTPDevice.objects.filter(user=admin).exists()
    assert not StaticDevice.objects.filter(user=admin).exists()
    assert actions("auth.second_factor_reset") == [("auth.second_factor_reset", "system")]
    sign_in(client, "csu-admin")
    assert client.get("/programmes/")["Location"].startswith("/accounts/two-factor/?")
