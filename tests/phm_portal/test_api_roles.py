"""Every API endpoint x every role x an object of their own and of another organisation.

The table below is the access policy of the API, written out. Each row is an
endpoint (its route name) and an HTTP method; each column a role: what it gets for an
object of its own organisation and for one of another organisation (see world.py:
side A is theirs, side B is not). A single number means the route names no object of
an organisation. Writes are sent with an empty body: a person who may act gets past
the permission check to validation (400) or to the state check (409); a person who
may not gets 403 (above their role) or 404 (not their organisation: existence is
never confirmed). The CSU admin acts for every programme; the auditor acts for none
but reads every record of processing, DPIA and agreement (ACROSS); a signatory signs
for their own organisation and reads what its other people read.

The test fails if an /api/v1/ endpoint or method is missing from the table, if any
status differs, if anyone but a CSU admin (or the auditor, reading what ACROSS names)
gets a 2xx for another organisation's object, or if a list answered to them names
anything of the other organisation.
"""

from __future__ import annotations

import itertools
import json

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from phm_portal.models import AuditEvent
from tests.phm_portal.test_access_control import fill
from tests.phm_portal.world import build_world, url_values

ROLES = ("practice_manager", "dpo", "csu_admin", "auditor", "signatory", "anonymous")
# Directory data every signed-in person reads (API.md: "read: signed in"): organisations,
# programmes, their participants and notices (the published ones are public anyway).
DIRECTORY = {
    "api-organisation-list",
    "api-organisation-detail",
    "api-programme-list",
    "api-programme-detail",
    "api-participant-list",
    "api-programme-notice-list",
    "api-legal-basis-list",
    "api-legal-basis-detail",
}
# Besides the CSU admin, who acts for every programme, who reads across organisations: the
# auditor reads every record of processing and every DPIA and agreement (read_every_assurance).
ACROSS = {
    ("auditor", "api-record-of-processing"),
    ("auditor", "api-dpia-detail"),
    ("auditor", "api-dpia-document"),
    ("auditor", "api-sharing-agreement-detail"),
    ("auditor", "api-sharing-agreement-document"),
}
# Strings that only B's objects carry (world.py).
B_MARKERS = (
    "B82002",
    "Otherscape",
    "DPIA-B",
    "DSA-B",
    "b-extract",
    "colleague-b",
    "dpo-b",
    "signatory-b",
    "charlie",
)

# fmt: off
# (pm: practice_manager; signatory: a SIRO of practice A, who signs DPIAs and agreements only)
#  (route name, method):                       pm            dpo           csu_admin     auditor       signatory     anonymous
TABLE = {
    # --- sign-in and the person ---
    ("api-token", "POST"):                    (400,          400,          400,          400,          400,          400),
    ("api-me", "GET"):                        (200,          200,          200,          200,          200,          401),
    # one's own API tokens (the id filled in is nobody's token: 404 for everyone)
    ("api-auth-token-list", "GET"):           (200,          200,          200,          200,          200,          401),
    ("api-auth-token-detail", "DELETE"):      ((404, 404),   (404, 404),   (404, 404),   (404, 404),   (404, 404),   401),
    # --- audit ---
    ("api-audit", "GET"):                     (403,          403,          200,          200,          403,          401),
    ("api-audit-verify", "GET"):              (403,          403,          200,          200,          403,          401),
    ("api-audit-checkpoints", "GET"):         (403,          403,          200,          200,          403,          401),
    # --- organisations, programmes, participants, legal bases (directory) ---
    ("api-organisation-list", "GET"):         (200,          200,          200,          200,          200,          401),
    ("api-organisation-list", "POST"):        (403,          403,          400,          403,          403,          401),
    ("api-organisation-detail", "GET"):       ((200, 200),   (200, 200),   (200, 200),   (200, 200),   (200, 200),   401),
    ("api-organisation-detail", "PATCH"):     ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    ("api-record-of-processing", "GET"):      ((403, 404),   (200, 404),   (200, 200),   (200, 200),   (403, 404),   401),
    ("api-legal-basis-list", "GET"):          (200,          200,          200,          200,          200,          401),
    ("api-legal-basis-detail", "GET"):        (200,          200,          200,          200,          200,          401),
    ("api-programme-list", "GET"):            (200,          200,          200,          200,          200,          401),
    ("api-programme-list", "POST"):           (403,          403,          400,          403,          403,          401),
    ("api-programme-detail", "GET"):          ((200, 200),   (200, 200),   (200, 200),   (200, 200),   (200, 200),   401),
    ("api-programme-detail", "PATCH"):        ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    ("api-participant-list", "GET"):          ((200, 200),   (200, 200),   (200, 200),   (200, 200),   (200, 200),   401),
    ("api-participant-list", "POST"):         ((403, 403),   (403, 403),   (400, 400),   (403, 403),   (403, 403),   401),
    # --- people ---
    ("api-user-list", "GET"):                 (403,          403,          200,          403,          403,          401),
    ("api-user-list", "POST"):                (403,          403,          400,          403,          403,          401),
    ("api-user-detail", "GET"):               ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    # --- data flows ---
    ("api-data-flow-list", "GET"):            (200,          200,          200,          200,          200,          401),
    ("api-data-flow-list", "POST"):           (403,          400,          400,          403,          403,          401),
    ("api-data-flow-detail", "GET"):          ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-data-flow-detail", "PATCH"):        ((403, 404),   (409, 404),   (409, 409),   (404, 404),   (403, 404),   401),
    ("api-data-flow-submit", "POST"):         ((403, 404),   (403, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    ("api-data-flow-approve", "POST"):        ((403, 404),   (403, 404),   (409, 409),   (404, 404),   (403, 404),   401),
    ("api-data-flow-reject", "POST"):         ((403, 404),   (403, 404),   (400, 400),   (404, 404),   (403, 404),   401),
    ("api-data-flow-suspend", "POST"):        ((403, 404),   (403, 404),   (200, 200),   (404, 404),   (403, 404),   401),
    ("api-data-flow-reinstate", "POST"):      ((403, 404),   (403, 404),   (409, 409),   (404, 404),   (403, 404),   401),
    ("api-data-flow-close", "POST"):          ((403, 404),   (403, 404),   (200, 200),   (404, 404),   (403, 404),   401),
    # (a CSU admin asks, another reinstates; the flow is approved, not suspended: 409)
    ("api-data-flow-request-reinstatement", "POST"): ((403, 404), (403, 404), (409, 409), (404, 404), (403, 404), 401),
    # --- extracts and jobs ---
    ("api-dataset-list", "GET"):              (200,          200,          200,          200,          200,          401),
    ("api-dataset-list", "POST"):             (400,          400,          400,          400,          400,          401),
    ("api-dataset-detail", "GET"):            ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-dataset-pseudonymise", "POST"):     ((403, 403),   (403, 403),   (202, 202),   (403, 403),   (403, 403),   401),
    ("api-job-detail", "GET"):                ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-job-cancel", "POST"):               ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    ("api-job-output", "GET"):                ((404, 404),   (404, 404),   (409, 409),   (404, 404),   (404, 404),   401),
    ("api-reidentify", "POST"):               ((400, 404),   (403, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    # --- destruction (the run and certificate are of the side's programme destroyed early) ---
    ("api-programme-destruction", "POST"):    ((403, 404),   (403, 404),   (409, 409),   (404, 404),   (403, 404),   401),
    ("api-destruction-run", "GET"):           ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-certificate", "GET"):               ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-certificate-pdf", "GET"):           ((200, 404),   (200, 404),   (200, 200),   (404, 404),   (200, 404),   401),
    ("api-certificate-verify", "POST"):       (415,          415,          415,          415,          415,          415),
    # --- Type 1 opt-outs and patients' requests ---
    ("api-type1-opt-outs", "GET"):            ((200, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-opt-outs", "POST"):           ((400, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-import", "POST"):             ((415, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-fhir", "GET"):                ((200, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-export", "GET"):              ((200, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-requests", "GET"):            ((200, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-request-record", "POST"):     ((400, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    ("api-type1-request-decline", "POST"):    ((400, 404),   (403, 404),   (404, 404),   (404, 404),   (403, 404),   401),
    # --- national data opt-outs and the register ---
    ("api-national-checks", "GET"):           (403,          403,          200,          403,          403,          401),
    ("api-national-checks", "POST"):          (403,          403,          400,          403,          403,          401),
    ("api-national-check", "GET"):            ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    ("api-national-check-submission", "GET"): ((403, 403),   (403, 403),   (200, 200),   (403, 403),   (403, 403),   401),
    ("api-national-check-returned", "POST"):  ((403, 403),   (403, 403),   (415, 415),   (403, 403),   (403, 403),   401),
    ("api-opt-out-register", "POST"):         (400,          400,          400,          400,          400,          401),
    # --- privacy notices ---
    ("api-programme-notice-list", "GET"):     ((200, 200),   (200, 200),   (200, 200),   (200, 200),   (200, 200),   401),
    ("api-programme-notice-list", "POST"):    ((403, 404),   (200, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    ("api-notice-detail", "GET"):             ((403, 404),   (200, 404),   (200, 200),   (404, 404),   (403, 404),   401),
    ("api-notice-detail", "PATCH"):           ((403, 404),   (400, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    ("api-notice-completeness", "GET"):       ((403, 404),   (200, 404),   (200, 200),   (404, 404),   (403, 404),   401),
    ("api-notice-publish", "POST"):           ((403, 404),   (409, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    ("api-notice-withdraw", "POST"):          ((403, 404),   (400, 404),   (403, 403),   (404, 404),   (403, 404),   401),
    # --- assurance: DPIAs and data sharing agreements (issue 17) ---
    # Read by the programme's participants, every CSU admin and the auditor; drafted by a CSU
    # admin or a DPO of a controller (a party); advised on by a controller's DPO; signed by
    # a signatory. Each side's DPIA is a draft with its PDF; its agreement (practice and
    # CSU) is unsigned, with its PDF. An empty PATCH changes nothing (200); a document is
    # sent as multipart, so the JSON body is 415 to those who may attach one.
    ("api-dpia-list", "GET"):                 (200,          200,          200,          200,          200,          401),
    ("api-dpia-list", "POST"):                (403,          400,          400,          403,          403,          401),
    ("api-dpia-detail", "GET"):               ((200, 404),   (200, 404),   (200, 200),   (200, 200),   (200, 404),   401),
    ("api-dpia-detail", "PATCH"):             ((403, 404),   (200, 404),   (200, 200),   (403, 403),   (403, 404),   401),
    ("api-dpia-dpo-advice", "POST"):          ((403, 404),   (400, 404),   (403, 403),   (403, 403),   (403, 404),   401),
    ("api-dpia-sign-off", "POST"):            ((403, 404),   (403, 404),   (403, 403),   (403, 403),   (400, 404),   401),
    ("api-dpia-start-review", "POST"):        ((403, 404),   (409, 404),   (409, 409),   (403, 403),   (403, 404),   401),
    ("api-dpia-document", "GET"):             ((200, 404),   (200, 404),   (200, 200),   (200, 200),   (200, 404),   401),
    ("api-dpia-document", "POST"):            ((403, 404),   (415, 404),   (415, 415),   (403, 403),   (403, 404),   401),
    ("api-sharing-agreement-list", "GET"):    (200,          200,          200,          200,          200,          401),
    ("api-sharing-agreement-list", "POST"):   (403,          400,          400,          403,          403,          401),
    ("api-sharing-agreement-detail", "GET"):  ((200, 404),   (200, 404),   (200, 200),   (200, 200),   (200, 404),   401),
    ("api-sharing-agreement-detail", "PATCH"): ((403, 404),  (200, 404),   (200, 200),   (403, 403),   (403, 404),   401),
    ("api-sharing-agreement-sign", "POST"):   ((403, 404),   (403, 404),   (403, 403),   (403, 403),   (400, 404),   401),
    ("api-sharing-agreement-document", "GET"): ((200, 404),  (200, 404),   (200, 200),   (200, 200),   (200, 404),   401),
    ("api-sharing-agreement-document", "POST"): ((403, 404), (415, 404),   (415, 415),   (403, 403),   (403, 404),   401),
}
# fmt: on


def _api_endpoints(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _api_endpoints(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            if not route.startswith("api/v1/") or "format" in p.pattern.regex.groupindex:
                continue
            if p.name == "api-root":
                continue  # the router's browsable index of links
            yield route, p


def api_endpoints() -> dict[tuple[str, str], str]:
    """(route name, method) -> route, for every endpoint under /api/v1/."""
    found = {}
    for route, pattern in _api_endpoints(get_resolver().url_patterns):
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        if actions is not None:
            methods = list(actions)
        else:
            view = callback.view_class
            methods = [m for m in view.http_method_names if m not in ("options", "head")]
            methods = [m for m in methods if hasattr(view, m)]
        for method in methods:
            if method == "put":
                continue  # PATCH covers updates; PUT is refused by http_method_names where offered
            found[(pattern.name, method.upper())] = route
    return found


ENDPOINTS = api_endpoints()


def test_the_table_names_every_api_endpoint_and_nothing_else():
    assert sorted(set(ENDPOINTS) - set(TABLE)) == [], "add these endpoints to TABLE"
    assert sorted(set(TABLE) - set(ENDPOINTS)) == [], "these endpoints no longer exist"


def expected(name: str, method: str, role: str, scope: str) -> int:
    cell = TABLE[(name, method)][ROLES.index(role)]
    return cell if isinstance(cell, int) else cell[0 if scope == "own" else 1]


def has_object(route: str) -> bool:
    return "<" in route or "(?P<" in route


def call(world, name: str, method: str, role: str, scope: str):
    route = ENDPOINTS[(name, method)]
    url = fill(route, url_values(world, scope, name))
    client = APIClient()
    user = world.people[role]
    if user is not None:
        client.force_authenticate(user)
    return getattr(client, method.lower())(url, {} if method != "GET" else None, format="json")


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


@pytest.mark.django_db
def test_each_role_gets_what_the_table_says():
    world = build_world()  # once: each request runs in a savepoint rolled back after it
    wrong, leaks, admin_saw = [], [], set()
    for (name, method), role in itertools.product(sorted(TABLE), ROLES):
        route = ENDPOINTS[(name, method)]
        scopes = ("own", "other") if has_object(route) else ("own",)
        for scope in scopes:
            audit_before = AuditEvent.objects.count()
            with transaction.atomic():
                response = call(world, name, method, role, scope)
                status = response.status_code
                body = body_of(response)
                written = AuditEvent.objects.count() - audit_before
                transaction.set_rollback(True)
            want = expected(name, method, role, scope)
            if status != want:
                wrong.append(
                    f"{method} {name} {role} {scope}: {status} (table: {want}) {body[:200]!r}"
                )
            # Whatever the table says: only a CSU admin acts on another organisation's objects
            # (and the auditor reads every record of processing),
            across = role == "csu_admin" or (role, name) in ACROSS
            other = scope == "other" and not across and name not in DIRECTORY
            if other and status < 400:
                leaks.append(
                    f"{method} {name} {role} reached another organisation's object: {status}"
                )
            # a refused request changes nothing (every change is audited),
            if status >= 400 and written:
                leaks.append(
                    f"{method} {name} {role} {scope}: refused with {status} but {written} audit event(s)"
                )
            # and nothing of another organisation appears in what they are shown.
            if (
                role == "csu_admin"
                and method == "GET"
                and any(m.encode() in body for m in B_MARKERS)
            ):
                admin_saw.add(name)
            if (
                role in ("practice_manager", "dpo", "signatory")
                and status < 300
                and name not in DIRECTORY
            ):
                text = body.decode(errors="replace")
                if response.get("Content-Type", "").startswith("application/json"):
                    text = json.dumps(json.loads(text))  # \u escapes undone
                found = [m for m in B_MARKERS if m in text]
                if found and scope == "own":
                    leaks.append(
                        f"{method} {name} {role}: the answer names {found} of another organisation"
                    )
    assert wrong == [], "\n".join(wrong)
    assert leaks == [], "\n".join(leaks)
    # The markers are there to be found: the CSU admin's lists do show B's objects.
    assert {
        "api-data-flow-list",
        "api-dataset-list",
        "api-user-list",
        "api-dpia-list",
        "api-sharing-agreement-list",
    } <= admin_saw
