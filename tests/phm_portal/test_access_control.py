"""Access control proven: no URL of the project answers a stranger unless it is meant to.

Every URL pattern is walked (recursively, admin included), its converters filled with
real objects, and requested without sign-in. A page must send the stranger to sign in;
an API endpoint must answer 401 or 403. The public URLs are an explicit list: a new
public URL has to be added here knowingly.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests.phm_portal.world import build_world, url_values

# Route names anyone may reach without signing in, and why.
PUBLIC = {
    # signing in and setting a password from the one-time link
    "login": "the sign-in page",
    "logout": "signing out (POST) is harmless without a session",
    "password_reset_confirm": "the one-time set-password link checks its own token",
    "password_reset_complete": "says the password is set",
    "admin:login": "Django admin's own sign-in page",
    "admin:logout": "signing out of the admin",
    "api-token": "exchanges a username and password for a token",
    # patients
    "practice-public": "a practice's public opt-out page, where patients ask",
    "practice-public-requested": "the reference number of a patient's request",
    "notice-search": "patients find their practice's privacy notices",
    "notice-current": "the current privacy notice of a programme",
    "notice-version": "a published or withdrawn version of a notice",
    "notice-changes": "what changed between two published versions",
    "notice-pdf": "the PDF of a published version",
    # machines and developers
    "health": "the load balancer's health check",
    "api-schema": "the OpenAPI description (no data)",
    "api-docs": "the browsable API documentation (no data)",
    # destruction certificates: anyone may check one (DESIGN.md "destruction")
    "certificate-verify": "the public page that checks a destruction certificate",
    "api-certificate-verify": "the same check through the API",
}


def _patterns(patterns, prefix: str = "", namespace: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _patterns(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), (namespace + p.name) if p.name else None, p


def all_routes() -> list[tuple[str, str | None, URLPattern]]:
    return list(_patterns(get_resolver().url_patterns))


def fill(route: str, values: dict[str, str]) -> str:
    """Turn a route (path() converters or a regex) into a URL with the given values."""
    url = re.sub(r"\(\?P<(\w+)>[^()]*\)", lambda m: values[m.group(1)], route)
    url = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: ("." if m.group(1) == "drf_format_suffix" else "") + values[m.group(2)],
        url,
    )
    url = url.replace("^", "").replace("/?$", "").replace("$", "").replace("\\.", ".")
    return "/" + url


def test_every_route_is_filled_into_a_url_that_reaches_it():
    values = {k: "1" for k in ("pk", "ods_code", "slug", "programme_slug", "patient_id", "flow_id")}
    values.update(
        dataset_id=str(uuid.uuid4()), job_id=str(uuid.uuid4()), reference="R1", number="1",
        code="C", action="approve", fmt="csv", format="json", uidb64="MQ", token="t",
        app_label="governance", object_id="1", content_type_id="1", url="x", id="1", serial="S1",
    )  # fmt: skip
    for route, _, pattern in all_routes():
        url = fill(route, values)
        assert resolve(url).func == pattern.callback, (route, url)


def test_the_public_list_names_only_routes_that_exist():
    names = {name for _, name, _ in all_routes()}
    assert set(PUBLIC) - names == set()


@pytest.mark.django_db
def test_no_private_url_answers_a_stranger():
    world = build_world()
    stranger = Client()
    reached = []
    checked = 0
    for route, name, _ in all_routes():
        if name in PUBLIC:
            continue
        url = fill(route, url_values(world, "own", name or ""))
        for method in ("get", "post"):
            response = getattr(stranger, method)(url)
            checked += 1
            status = response.status_code
            if route.startswith("api/"):
                ok = status in (401, 403)
            elif route.startswith("admin/"):
                ok = status == 302 and response["Location"].startswith("/admin/login/")
            else:
                ok = status == 302 and response["Location"].startswith("/accounts/login/?next=")
            if not ok:
                reached.append(f"{method.upper()} {url} ({name or route}): {status}")
    assert reached == []
    assert checked > 200  # the walk really went through the project, admin included
