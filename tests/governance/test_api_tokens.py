"""API tokens: stored hashed, expire, die with the password or second factor they were
issued under, and their holder sees and revokes them (API and page)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from governance import services
from governance.models import ApiToken, User
from phm_portal.models import AuditEvent
from tests.phm_portal.test_settings import run_manage

PASSWORD = "correct-horse-battery"  # tests/factories.py
NEW_PASSWORD = "a-new-and-long-passphrase-7"
TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"

pytestmark = pytest.mark.django_db


def obtain(username: str, **extra) -> dict:
    response = APIClient().post(
        TOKEN_URL, {"username": username, "password": PASSWORD, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def me(key: str):
    return APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")


def with_token(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


def otp_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


# --- issuing ---------------------------------------------------------------------------
def test_a_token_is_kept_only_as_its_hash_and_says_when_it_expires(alice):
    before = timezone.now()
    body = obtain("alice", name="practice system")
    key = body["token"]
    assert key.startswith("phm_") and len(key) >= 40
    expires = dt.datetime.fromisoformat(body["expires"])
    hours = dt.timedelta(hours=settings.PHM_API_TOKEN_HOURS)
    assert before + hours <= expires <= timezone.now() + hours
    token = ApiToken.objects.get(pk=body["id"])
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert token.name == "practice system" and key.startswith(token.prefix)
    # The key itself is nowhere in the row, nor in the audit log.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM governance_apitoken")
        assert not any(key in str(value) for row in cursor.fetchall() for value in row)
    event = AuditEvent.objects.get(action="auth.api_token_issued")
    assert event.actor == "alice" and event.details["token"] == token.pk
    assert key not in str(event.details) and event.details["second_factor"] is False
    assert me(key).json()["username"] == "alice"


def test_a_person_may_hold_several_tokens(alice):
    first, second = obtain("alice")["token"], obtain("alice")["token"]
    assert first != second
    assert me(first).status_code == 200 and me(second).status_code == 200


def test_the_token_lifetime_follows_the_setting(alice, settings):
    settings.PHM_API_TOKEN_HOURS = 1
    body = obtain("alice")
    token = ApiToken.objects.get(pk=body["id"])
    assert token.expires_at - token.created_at == dt.timedelta(hours=1)


def test_an_expired_token_is_refused_and_says_so(alice):
    body = obtain("alice")
    past = timezone.now() - dt.timedelta(seconds=1)
    ApiToken.objects.filter(pk=body["id"]).update(
        created_at=past - dt.timedelta(hours=12), expires_at=past
    )
    response = me(body["token"])
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_name_too_long_is_named(alice):
    response = APIClient().post(
        TOKEN_URL, {"username": "alice", "password": PASSWORD, "name": "x" * 101}, format="json"
    )
    assert response.status_code == 400 and "name" in response.json()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(("value", "message"), [("0", "at least 1"), ("twelve", "whole number")])
def test_a_bad_token_lifetime_stops_start_up(tmp_path, value, message):
    result = run_manage(tmp_path, {"PHM_DEMO": "1", "PHM_API_TOKEN_HOURS": value}, "check")
    assert result.returncode != 0
    assert "PHM_API_TOKEN_HOURS" in result.stderr and message in result.stderr


def test_drf_authtoken_is_gone_and_its_keys_do_not_work(alice):
    assert "rest_framework.authtoken" not in settings.INSTALLED_APPS
    assert "authtoken_token" not in connection.introspection.table_names()
    response = me("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    assert response.status_code == 401


def test_the_last_use_is_recorded(alice):
    body = obtain("alice")
    assert ApiToken.objects.get(pk=body["id"]).last_used_at is None
    me(body["token"])
    used = ApiToken.objects.get(pk=body["id"]).last_used_at
    assert used is not None and timezone.now() - used < dt.timedelta(seconds=30)


# --- tokens die with the credentials they were issued under -----------------------------
def test_a_password_changed_on_the_page_ends_the_tokens(client, alice):
    key = obtain("alice")["token"]
    client.force_login(alice)
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    refused = me(key)
    assert refused.status_code == 401
    assert "password or second factor" in refused.json()["detail"]


def test_a_password_set_with_the_one_time_link_ends_the_tokens(client, alice):
    key = obtain("alice")["token"]
    form = client.get(services.set_password_path(alice))
    assert form.status_code == 302  # Django moves the token out of the URL
    response = client.post(
        form["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert me(key).status_code == 401


def test_a_password_set_anywhere_else_ends_the_tokens(alice):
    """The admin site and the shell call set_password too: no hook to forget."""
    key = obtain("alice")["token"]
    alice.set_password(NEW_PASSWORD)
    alice.save()
    assert me(key).status_code == 401


def test_a_new_token_after_a_new_password_works(alice):
    old = obtain("alice")["token"]
    alice.set_password(PASSWORD)  # the same password, a new hash
    alice.save()
    new = obtain("alice")["token"]
    assert me(old).status_code == 401 and me(new).status_code == 200
    assert ApiToken.objects.filter(user=alice).count() == 1  # the dead one is gone


def test_setting_up_a_second_factor_ends_the_tokens(client, admin, settings):
    settings.PHM_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    key = obtain("csu-admin", otp=otp_code(device))["token"]
    assert me(key).status_code == 200
    TOTPDevice.objects.all().delete()
    client.force_login(admin)
    page = client.get("/accounts/two-factor/")
    assert page.status_code == 200
    new_device = TOTPDevice.objects.get(user=admin, confirmed=False)
    assert client.post("/accounts/two-factor/", {"code": otp_code(new_device)}).status_code == 200
    assert me(key).status_code == 401
    assert not ApiToken.objects.filter(user=admin).exists()
    event = AuditEvent.objects.get(action="auth.api_tokens_revoked")
    assert event.details == {"tokens": 1, "reason": "second factor set up"}


def test_a_second_factor_changed_behind_the_page_ends_the_tokens(admin, settings):
    settings.PHM_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    key = obtain("csu-admin", otp=otp_code(device))["token"]
    device.delete()
    TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    assert me(key).status_code == 401


def test_resetting_the_second_factor_ends_the_tokens(admin, settings):
    settings.PHM_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    key = obtain("csu-admin", otp=otp_code(device))["token"]
    call_command("reset_second_factor", "csu-admin")
    assert me(key).status_code == 401
    event = AuditEvent.objects.get(action="auth.api_tokens_revoked")
    assert event.actor == "system" and event.details["reason"] == "second factor reset"


def test_a_token_from_before_the_second_factor_was_required_stops_working(admin, alice, settings):
    settings.PHM_REQUIRE_2FA = False
    admin_key, alice_key = obtain("csu-admin")["token"], obtain("alice")["token"]
    assert me(admin_key).status_code == 200
    settings.PHM_REQUIRE_2FA = True
    refused = me(admin_key)
    assert refused.status_code == 401
    assert "issued without a one-time code" in refused.json()["detail"]
    # A practice manager needs no second factor: their token goes on working.
    assert me(alice_key).status_code == 200


def test_a_token_from_a_role_without_a_second_factor_stops_when_the_role_needs_one(alice, settings):
    settings.PHM_REQUIRE_2FA = True
    key = obtain("alice")["token"]
    User.objects.filter(pk=alice.pk).update(role=User.Role.DPO)
    assert me(key).status_code == 401


def test_a_disabled_account_has_no_working_token(alice):
    key = obtain("alice")["token"]
    User.objects.filter(pk=alice.pk).update(is_active=False)
    response = me(key)
    assert response.status_code == 401 and "disabled" in response.json()["detail"]


# --- seeing and revoking one's own tokens: API ----------------------------------------------
def test_a_person_lists_their_own_working_tokens_without_the_keys(alice, charlie):
    first = obtain("alice", name="nightly import")
    second = obtain("alice")
    obtain("charlie", name="charlie's")
    dead = obtain("alice", name="expired one")
    past = timezone.now() - dt.timedelta(seconds=1)
    ApiToken.objects.filter(pk=dead["id"]).update(
        created_at=past - dt.timedelta(hours=1), expires_at=past
    )
    response = with_token(second["token"]).get(TOKENS_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    listed = {t["id"]: t for t in body["results"]}
    assert set(listed) == {first["id"], second["id"]}
    assert listed[first["id"]]["name"] == "nightly import"
    assert listed[second["id"]]["current"] is True and listed[first["id"]]["current"] is False
    assert set(listed[first["id"]]) == {
        "id", "name", "prefix", "created", "expires", "last_used", "second_factor", "current"
    }  # fmt: skip
    text = response.content.decode()
    assert first["token"] not in text and second["token"] not in text
    assert "digest" not in text and "charlie" not in text


def test_a_person_revokes_their_own_token(alice):
    kept, gone = obtain("alice"), obtain("alice")
    response = with_token(kept["token"]).delete(f"{TOKENS_URL}{gone['id']}/")
    assert response.status_code == 204
    assert me(gone["token"]).status_code == 401
    assert me(kept["token"]).status_code == 200
    event = AuditEvent.objects.get(action="auth.api_token_revoked")
    assert event.actor == "alice" and event.details["token"] == gone["id"]
    again = with_token(kept["token"]).delete(f"{TOKENS_URL}{gone['id']}/")
    assert again.status_code == 404


def test_a_token_can_revoke_itself(alice):
    body = obtain("alice")
    assert with_token(body["token"]).delete(f"{TOKENS_URL}{body['id']}/").status_code == 204
    assert me(body["token"]).status_code == 401


@pytest.mark.parametrize("who", ["bob", "charlie", "admin", "auditor"])
def test_another_persons_token_is_a_404_and_survives(alice, who, request):
    """The colleague, the outsider, a CSU admin and the auditor alike."""
    other = request.getfixturevalue(who)
    target = obtain("alice")
    client = APIClient()
    client.force_authenticate(other)
    response = client.delete(f"{TOKENS_URL}{target['id']}/")
    assert response.status_code == 404
    assert me(target["token"]).status_code == 200
    assert not AuditEvent.objects.filter(action="auth.api_token_revoked").exists()
    listed = client.get(TOKENS_URL).json()
    assert listed["count"] == 0


@pytest.mark.parametrize("token_id", ["0", "99999", "9" * 30, "abc", "-1", "1.5"])
def test_odd_token_ids_are_404(alice, token_id):
    key = obtain("alice")["token"]
    assert with_token(key).delete(f"{TOKENS_URL}{token_id}/").status_code == 404


def test_the_token_list_needs_sign_in(db):
    assert APIClient().get(TOKENS_URL).status_code == 401
    assert APIClient().delete(f"{TOKENS_URL}1/").status_code == 401


# --- seeing and revoking one's own tokens: pages --------------------------------------------
def test_the_account_area_links_to_the_tokens_page(client, alice):
    client.force_login(alice)
    assert 'href="/accounts/api-tokens/"' in client.get("/").content.decode()


def test_the_tokens_page_lists_them_without_the_keys(client, alice, charlie):
    body = obtain("alice", name="nightly import")
    other = obtain("charlie", name="charlie's client")
    client.force_login(alice)
    response = client.get("/accounts/api-tokens/")
    assert response.status_code == 200
    page = response.content.decode()
    token = ApiToken.objects.get(pk=body["id"])
    assert "nightly import" in page and token.prefix in page
    assert body["token"] not in page and "charlie" not in page and other["token"] not in page
    assert f'href="/accounts/api-tokens/{token.pk}/revoke/"' in page


def test_revoking_on_the_page_asks_first(client, alice):
    body = obtain("alice", name="nightly import")
    client.force_login(alice)
    url = f"/accounts/api-tokens/{body['id']}/revoke/"
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Revoke the token" in confirm.content.decode()
    assert me(body["token"]).status_code == 200  # asking is not revoking
    done = client.post(url, follow=True)
    assert done.redirect_chain == [("/accounts/api-tokens/", 302)]
    assert "is revoked" in done.content.decode()
    assert me(body["token"]).status_code == 401
    assert AuditEvent.objects.filter(action="auth.api_token_revoked", actor="alice").count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_persons_token_page_is_a_404(client, alice, charlie, method):
    body = obtain("alice")
    client.force_login(charlie)
    response = getattr(client, method)(f"/accounts/api-tokens/{body['id']}/revoke/")
    assert response.status_code == 404
    assert me(body["token"]).status_code == 200


def test_the_tokens_pages_need_sign_in(client, alice):
    body = obtain("alice")
    for url in ("/accounts/api-tokens/", f"/accounts/api-tokens/{body['id']}/revoke/"):
        response = client.post(url)
        assert response.status_code == 302
        assert re.match(r"/accounts/login/\?next=", response["Location"])
    assert me(body["token"]).status_code == 200
