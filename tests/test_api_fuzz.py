"""The API under attack: schemathesis generates requests from /api/schema/ for every operation.

Signed in with a token as a CSU admin and as a practice manager (the world of
tests/phm_portal/world.py: real objects of their own organisation and of another),
it sends valid and invalid data to every operation and checks that no answer is a 500
and that every answer conforms to the schema (status, content type, body). Bounded:
a few examples per operation and generation mode, with no shrinking.
"""

from __future__ import annotations

import contextlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from governance import services
from tests.phm_portal.world import build_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 5


def run_operation(operation, headers: dict, mode: GenerationMode) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        # Each request in a savepoint rolled back after it: on PostgreSQL a failed
        # statement would otherwise abort the test's transaction for every later request.
        with transaction.atomic():
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            finally:
                transaction.set_rollback(True)

    check()


@contextlib.contextmanager
def keep_the_test_connection():
    """Keep Django from closing the database connection after each WSGI request.

    The real WSGI handler closes the connection when a request finishes; on PostgreSQL
    that would end the test's transaction. Django's test client does the same as this
    (and connects the handlers again after each of its requests, so this comes last).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["csu_admin", "practice_manager"])
def test_no_operation_answers_500_or_outside_the_schema(role):
    world = build_world()
    _, key = services.api_token_issue(user=world.people[role], second_factor=False)
    headers = {"Authorization": f"Token {key}"}
    failures = []
    with keep_the_test_connection():
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 50
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    run_operation(operation, headers, mode)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Unsatisfiable:
                    continue  # nothing here can be made invalid (no body, no parameter)
                except BaseException as exc:  # noqa: BLE001 - all failures reported together
                    failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert failures == [], "\n\n".join(failures)


@pytest.mark.django_db
@pytest.mark.parametrize("body", ['""', "[]", "null", "3", "true"])
def test_a_json_body_that_is_not_an_object_is_a_400_on_every_operation(client, body):
    """Found by the fuzzing above: a body of `""` reached a view as a string (a 500)."""
    world = build_world()
    _, key = services.api_token_issue(user=world.people["csu_admin"], second_factor=False)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    sent = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = (
                operation.get("requestBody", {}).get("content", {})
                if isinstance(operation, dict)
                else {}
            )
            if "application/json" not in content or "{" in path:
                continue
            response = client.generic(
                method.upper(),
                path,
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {key}",
            )
            sent += 1
            if response.status_code in (401, 403):  # refused before the body is read
                continue
            assert response.status_code == 400, (method, path, response.content[:200])
            assert "must be a JSON object" in response.json()["detail"], (method, path)
    assert sent > 5
