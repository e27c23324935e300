"""Nobody can lock staff out: failures count per account and client address, and many
addresses guessing one account (or one address guessing many) are slowed and reported."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from phm_portal.lib.client import client_address
from phm_portal.models import AuditEvent
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"  # tests/factories.py
TOKEN_URL = "/api/v1/auth/token/"
PROXY = "10.0.0.1"  # the TLS proxy's own address: REMOTE_ADDR of every request through it
HOME = "198.51.100.7"  # alice's usual address
STRANGER = "203.0.113.66"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.PHM_LOGIN_FAILURE_LIMIT = 5
    settings.PHM_LOGIN_ACCOUNT_FAILURE_LIMIT = 10
    settings.PHM_LOGIN_ADDRESS_FAILURE_LIMIT = 20
    settings.PHM_BEHIND_TLS_PROXY = False


def _where(address: str, forwarded: str | None) -> dict:
    extra = {"REMOTE_ADDR": address}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return extra


def page(username: str, password: str = PASSWORD, *, ip: str, forwarded: str | None = None):
    """Sign in on the page, from a browser of its own (no session carried over)."""
    return Client().post(
        "/accounts/login/",
        {"username": username, "password": password, "next": "/"},
        **_where(ip, forwarded),
    )


def token(username: str, password: str = PASSWORD, *, ip: str, forwarded: str | None = None):
    return APIClient().post(
        TOKEN_URL,
        {"username": username, "password": password},
        format="json",
        **_where(ip, forwarded),
    )


def signed_in(response) -> bool:
    """Whether the page or the token endpoint let the person in (by the API's contract)."""
    if response.wsgi_request.path == TOKEN_URL:
        return response.status_code == 200 and bool(response.json().get("token"))
    return response.status_code == 302 and response["Location"] == "/"


def refused(response) -> bool:
    if response.wsgi_request.path == TOKEN_URL:
        return response.status_code in (400, 429) and "token" not in response.json()
    return response.status_code in (200, 429) and "_auth_user_id" not in response.client.session


SIGN_IN = {"page": page, "token": token}


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


# --- the client's address -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("proxy", "remote", "forwarded", "expected"),
    [
        (False, "192.0.2.1", None, "192.0.2.1"),
        (False, "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # the client's own words: ignored
        (True, PROXY, "203.0.113.9", "203.0.113.9"),
        (True, PROXY, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # only what the proxy appended
        (True, PROXY, "6.6.6.6,203.0.113.9", "203.0.113.9"),
        (True, PROXY, "203.0.113.9:51234", "203.0.113.9"),  # a proxy that adds the port
        (True, PROXY, "[2001:db8::1]:443", "2001:db8::1"),
        (True, PROXY, "2001:DB8:0::1", "2001:db8::1"),
        (True, PROXY, "::ffff:203.0.113.9", "203.0.113.9"),
        (True, PROXY, None, PROXY),  # around the proxy: the peer itself
        (True, PROXY, "", PROXY),
        (True, PROXY, "203.0.113.9, not-an-address", PROXY),
        (True, PROXY, "unknown", PROXY),
        (False, "", None, ""),
        (False, "garbage", None, ""),
    ],
)
def test_the_client_address_is_the_one_the_proxy_saw(settings, proxy, remote, forwarded, expected):
    settings.PHM_BEHIND_TLS_PROXY = proxy
    request = RequestFactory().get("/", **_where(remote, forwarded))
    assert client_address(request) == expected


def test_the_proxy_setting_counts_whatever_debug_is(settings):
    settings.DEBUG = True
    settings.PHM_BEHIND_TLS_PROXY = True
    request = RequestFactory().get("/", **_where(PROXY, "203.0.113.9"))
    assert client_address(request) == "203.0.113.9"


# --- per account and address -------------------------------------------------------------
@pytest.mark.parametrize("via", ["page", "token"])
def test_failures_from_another_address_never_lock_the_person_at_theirs(via, alice):
    sign_in = SIGN_IN[via]
    for _ in range(5):
        assert refused(sign_in("alice", "guess", ip=STRANGER))
    assert sign_in("alice", ip=STRANGER).status_code == 429  # the stranger's address is locked
    assert signed_in(sign_in("alice", ip=HOME))
    locked = events("auth.locked_out")
    assert [(e.actor, e.details["ip"], e.details["failures"]) for e in locked] == [
        ("alice", STRANGER, 5)
    ]


@pytest.mark.parametrize("via", ["page", "token"])
def test_behind_the_proxy_one_forwarded_client_does_not_lock_another(via, alice, settings):
    settings.PHM_BEHIND_TLS_PROXY = True
    sign_in = SIGN_IN[via]
    for _ in range(5):
        sign_in("alice", "guess", ip=PROXY, forwarded=STRANGER)
    assert sign_in("alice", ip=PROXY, forwarded=STRANGER).status_code == 429
    # Same REMOTE_ADDR (the proxy), another client: not locked.
    assert signed_in(sign_in("alice", ip=PROXY, forwarded=HOME))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {STRANGER}


def test_behind_the_proxy_a_forged_forwarded_address_neither_dodges_nor_frames(alice, settings):
    settings.PHM_BEHIND_TLS_PROXY = True
    # The stranger writes alice's address, then a new one each time, before the proxy's entry.
    for n in range(5):
        page("alice", "guess", ip=PROXY, forwarded=f"{HOME}, 192.0.2.{n}, {STRANGER}")
    assert page("alice", ip=PROXY, forwarded=f"192.0.2.99, {STRANGER}").status_code == 429
    assert signed_in(page("alice", ip=PROXY, forwarded=HOME))


def test_without_the_proxy_a_forged_forwarded_address_is_ignored(alice):
    for n in range(5):
        page("alice", "guess", ip=STRANGER, forwarded=f"192.0.2.{n}")
    assert page("alice", ip=STRANGER, forwarded=HOME).status_code == 429  # cannot dodge
    assert signed_in(page("alice", ip=HOME, forwarded=STRANGER))  # nor frame alice's address
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {STRANGER}


def test_the_audit_log_names_the_client_address_not_the_proxy(alice, settings):
    settings.PHM_BEHIND_TLS_PROXY = True
    page("alice", "guess", ip=PROXY, forwarded=f"6.6.6.6, {STRANGER}")
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert failed.details == {"username": "alice", "via": "page", "ip": STRANGER}


# --- many addresses, one account -----------------------------------------------------------
def spray(username: str, addresses: range, *, via=page) -> None:
    for n in addresses:
        assert refused(via(username, "guess", ip=f"192.0.2.{n}"))


@pytest.mark.parametrize("via", ["page", "token"])
def test_guessing_one_account_from_many_addresses_is_slowed_and_reported_once(
    via, alice, admin, admin2
):
    UserFactory(username="csu-admin-gone", role="csu_admin", is_active=False)
    assert signed_in(page("alice", ip=HOME))  # alice's usual address
    sign_in = SIGN_IN[via]
    spray("alice", range(10), via=sign_in)  # 10 addresses, one failure each: under attack
    # A new address now gets one try: its first failure locks it for the account.
    locked = sign_in("alice", "guess", ip="192.0.2.200")
    assert locked.status_code == 429
    assert sign_in("alice", ip="192.0.2.200").status_code == 429
    body = locked.json()["non_field_errors"][0] if via == "token" else locked.content.decode()
    assert "failed many times from other places" in body
    assert "a single try" in body
    assert AuditEvent.objects.filter(action="auth.locked_out", details__under_attack=True).exists()
    # One alert for the window, however many more failures come.
    spray("alice", range(20, 30), via=sign_in)
    [alert] = events("auth.account_under_attack")
    assert alert.actor == "alice"
    assert alert.details["failures"] == 10 and alert.details["addresses"] == 10
    assert alert.details["admins_emailed"] == 2
    [message] = mail.outbox
    assert sorted(message.to) == ["csu-admin-2@example.nhs.uk", "csu-admin@example.nhs.uk"]
    assert "alice" in message.subject and "failed 10 times from 10 addresses" in message.body
    assert PASSWORD not in message.body and "guess" not in message.body


@pytest.mark.parametrize("via", ["page", "token"])
def test_the_person_still_signs_in_from_their_usual_address_while_strangers_guess(via, alice):
    assert signed_in(page("alice", ip=HOME))
    spray("alice", range(30))
    sign_in = SIGN_IN[via]
    # At home: the full number of tries, then the right password.
    for _ in range(4):
        assert refused(sign_in("alice", "typo", ip=HOME))
    assert signed_in(sign_in("alice", ip=HOME))


@pytest.mark.parametrize("via", ["page", "token"])
def test_the_person_at_a_new_address_still_gets_a_try_while_strangers_guess(via, alice):
    spray("alice", range(30))
    assert signed_in(SIGN_IN[via]("alice", ip="198.51.100.200"))


def test_few_failures_across_addresses_slow_nothing(alice):
    spray("alice", range(5))  # with alice's own typos below: 9, one short of an attack
    for _ in range(4):
        assert refused(page("alice", "typo", ip=HOME))
    assert signed_in(page("alice", ip=HOME))
    assert not events("auth.account_under_attack") and not mail.outbox


def test_guessing_a_name_nobody_has_is_slowed_alike_but_alerts_nobody(admin):
    spray("nobody", range(10))
    assert page("nobody", "guess", ip=STRANGER).status_code == 429  # its one try, failed
    assert page("nobody", "guess", ip=STRANGER).status_code == 429
    assert not events("auth.account_under_attack") and not mail.outbox


def test_an_api_sign_in_makes_its_address_a_usual_one(alice):
    from phm_portal import signin

    request = RequestFactory().post(TOKEN_URL, REMOTE_ADDR=HOME)
    token("alice", "typo", ip=HOME)
    signin.sign_in_recorded(request=request, user=alice)
    assert not AccessAttempt.objects.filter(username="alice", ip_address=HOME).exists()
    assert signin.known_address(username="alice", address=HOME)
    assert not signin.known_address(username="alice", address=STRANGER)
    assert not signin.known_address(username="bob", address=HOME)


# --- one address, many accounts -------------------------------------------------------------
def test_guessing_many_accounts_from_one_address_leaves_its_usual_people_their_tries(
    alice, bob, charlie
):
    assert signed_in(page("bob", ip=STRANGER))  # bob works behind the same address
    for n in range(20):
        page(f"staff-{n}", "guess", ip=STRANGER)
    # bob: every try; charlie, never seen here: one.
    for _ in range(4):
        assert refused(page("bob", "typo", ip=STRANGER))
    assert signed_in(page("bob", ip=STRANGER))
    assert page("charlie", "typo", ip=STRANGER).status_code == 429
    assert page("charlie", ip=STRANGER).status_code == 429
    assert signed_in(page("charlie", ip=HOME))  # and elsewhere, as ever
    [noted] = events("auth.address_under_attack")
    assert noted.details["ip"] == STRANGER and noted.details["failures"] == 20
    assert not mail.outbox  # the audit log only: a botnet must not flood the admins' mail


# --- odd input -----------------------------------------------------------------------------
def test_an_overlong_username_is_refused_not_an_error(alice):
    response = token("a" * 5000, "guess", ip=STRANGER)
    assert response.status_code in (400, 429) and "token" not in response.json()
    assert AccessAttempt.objects.get().username == "a" * 150


def test_a_garbage_forwarded_header_behind_the_proxy_is_counted_at_the_peer(alice, settings):
    settings.PHM_BEHIND_TLS_PROXY = True
    response = page("alice", "guess", ip=PROXY, forwarded="'; DROP TABLE x; --")
    assert response.status_code == 200
    assert AccessAttempt.objects.get().ip_address == PROXY
