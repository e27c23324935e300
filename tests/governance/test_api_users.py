import pytest
from django.test import Client

from governance.models import User
from phm_portal.models import AuditEvent


def test_a_token_is_issued_for_a_right_password(api, alice):
    response = api().post(
        "/api/v1/auth/token/",
        {"username": "alice", "password": "correct-horse-battery"},
        format="json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    me = api().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.json()["username"] == "alice"


def test_a_wrong_password_gets_no_token(api, alice):
    response = api().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


def test_a_token_request_without_a_password_names_the_field(api, alice):
    response = api().post("/api/v1/auth/token/", {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_me_says_role_organisations_and_capabilities(api, alice):
    body = api(alice).get("/api/v1/me/").json()
    assert body["role"] == "practice_manager"
    assert [o["ods_code"] for o in body["organisations"]] == ["A81001"]
    assert body["capabilities"] == ["record_type1_opt_outs", "reidentify"]


def test_me_needs_sign_in(api, db):
    assert api().get("/api/v1/me/").status_code == 401


def test_a_csu_admin_adds_a_person_who_gets_a_set_password_link(api, admin, practice_a):
    response = api(admin).post(
        "/api/v1/users/",
        {
            "username": "dana",
            "email": "dana@example.nhs.uk",
            "role": "practice_manager",
            "organisations": ["A81001"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["organisations"] == ["A81001"]
    link = body["set_password_url"]
    assert "/accounts/set-password/" in link
    dana = User.objects.get(username="dana")
    assert not dana.has_usable_password()
    assert AuditEvent.objects.get(action="user.created").details == {
        "role": "practice_manager",
        "organisations": ["A81001"],
    }

    # The link lets Dana choose a password, once.
    browser = Client()
    form_page = browser.get(link.replace("http://testserver", ""), follow=True)
    assert b"Choose your password" in form_page.content
    done = browser.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-long-new-passphrase", "new_password2": "a-long-new-passphrase"},
        follow=True,
    )
    assert b"Your password is set" in done.content
    assert browser.login(username="dana", password="a-long-new-passphrase")
    again = Client().get(link.replace("http://testserver", ""), follow=True)
    assert b"This link no longer works" in again.content


@pytest.mark.parametrize("who", ["alice", "dpo_a", "auditor"])
def test_only_a_csu_admin_adds_people(api, who, request, practice_a):
    response = api(request.getfixturevalue(who)).post(
        "/api/v1/users/", {"username": "eve", "role": "csu_admin"}, format="json"
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="eve").exists()


@pytest.mark.parametrize("who", ["alice", "auditor"])
def test_only_a_csu_admin_lists_people(api, who, request):
    assert api(request.getfixturevalue(who)).get("/api/v1/users/").status_code == 403


def test_an_unknown_role_is_named(api, admin):
    response = api(admin).post("/api/v1/users/", {"username": "eve", "role": "root"}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()


def test_a_taken_username_is_named(api, admin, alice, practice_a):
    response = api(admin).post(
        "/api/v1/users/",
        {"username": "alice", "role": "practice_manager", "organisations": ["A81001"]},
        format="json",
    )
    assert response.status_code == 400
    assert "username" in response.json()
