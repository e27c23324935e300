"""With the database unreachable, pages answer 503 with a plain message (not a 500)."""

from unittest import mock

import pytest
from django.db import connection
from django.db.utils import OperationalError
from django.test import override_settings

from governance import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down():
    """Every new query fails as when the server refuses the connection."""
    refused = OperationalError('connection to server at "127.0.0.1", port 5999 failed: refused')
    with mock.patch.object(connection, "ensure_connection", side_effect=refused):
        yield


def assert_plain_page(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "Sorry, the service is unavailable" in page
    assert "cannot reach its database" in page
    assert "Traceback" not in page and "OperationalError" not in page


def test_a_public_page_answers_503_with_a_plain_message(client, programme, database_down):
    assert_plain_page(client.get("/notices/?q=Testshire"))


def test_a_signed_in_page_answers_503(client, admin):
    client.force_login(admin)  # the session was saved before the outage
    # The session middleware fails too, outside the view: the server's error handler answers
    # (the test client would otherwise raise what a real server hands to that handler).
    client.raise_request_exception = False
    refused = OperationalError("could not connect to server")
    with mock.patch.object(connection, "ensure_connection", side_effect=refused):
        assert_plain_page(client.get("/datasets/"))


def test_a_signed_in_page_answers_503_with_the_second_factor_on(client, admin):
    client.force_login(admin)
    client.raise_request_exception = False
    refused = OperationalError("server closed the connection unexpectedly")
    with (
        override_settings(PHM_REQUIRE_2FA=True),
        mock.patch.object(connection, "ensure_connection", side_effect=refused),
    ):
        assert_plain_page(client.get("/programmes/"))


def test_the_api_answers_503_in_json(client, admin):
    _, key = services.api_token_issue(user=admin, second_factor=False)
    refused = OperationalError("could not connect to server")
    with mock.patch.object(connection, "ensure_connection", side_effect=refused):
        response = client.get("/api/v1/programmes/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 503
    assert "cannot reach its database" in response.json()["detail"]


def test_the_health_check_says_so(client, database_down):
    response = client.get("/health/")
    assert response.status_code == 503 and response.json() == {"database": "unreachable"}


def test_other_errors_still_answer_500(client, admin):
    client.force_login(admin)
    client.raise_request_exception = False
    with mock.patch("governance.views.core.render", side_effect=RuntimeError("a bug")):
        response = client.get("/programmes/")
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in response.content.decode()
