"""The consent app's routes: included by phm_portal/urls.py (pages at the root, API under /api/v1/)."""

from __future__ import annotations

from django.urls import path

from consent import api, views

PRACTICE = "practices/<str:ods_code>/"

api_urls = [
    path(PRACTICE + "type1-opt-outs/", api.Type1OptOutList.as_view(), name="api-type1-opt-outs"),
    path(
        PRACTICE + "type1-opt-outs/import/",
        api.Type1OptOutImport.as_view(),
        name="api-type1-import",
    ),
    path(PRACTICE + "type1-opt-outs/fhir/", api.Type1OptOutFhir.as_view(), name="api-type1-fhir"),
    path(
        PRACTICE + "type1-opt-outs/export/",
        api.Type1OptOutExport.as_view(),
        name="api-type1-export",
    ),
    path(PRACTICE + "type1-requests/", api.Type1RequestList.as_view(), name="api-type1-requests"),
    path(
        PRACTICE + "type1-requests/<str:reference>/record/",
        api.Type1RequestRecord.as_view(),
        name="api-type1-request-record",
    ),
    path(
        PRACTICE + "type1-requests/<str:reference>/decline/",
        api.Type1RequestDecline.as_view(),
        name="api-type1-request-decline",
    ),
    path("national-opt-outs/checks/", api.NationalCheckList.as_view(), name="api-national-checks"),
    path(
        "national-opt-outs/checks/<int:pk>/",
        api.NationalCheckDetail.as_view(),
        name="api-national-check",
    ),
    path(
        "national-opt-outs/checks/<int:pk>/submission.dat",
        api.NationalCheckSubmission.as_view(),
        name="api-national-check-submission",
    ),
    path(
        "national-opt-outs/checks/<int:pk>/returned/",
        api.NationalCheckReturned.as_view(),
        name="api-national-check-returned",
    ),
    path("opt-outs/check/", api.OptOutRegisterCheck.as_view(), name="api-opt-out-register"),
]

page_urls = [
    path(PRACTICE, views.practice_public, name="practice-public"),
    path(
        PRACTICE + "requested/", views.practice_public_requested, name="practice-public-requested"
    ),
    path(PRACTICE + "opt-outs/", views.type1_list, name="type1-list"),
    path(PRACTICE + "opt-outs/record/", views.type1_record, name="type1-record"),
    path(PRACTICE + "opt-outs/lookup/", views.type1_lookup, name="type1-lookup"),
    path(
        PRACTICE + "opt-outs/patients/<int:patient_id>/",
        views.type1_patient,
        name="type1-patient",
    ),
    path(PRACTICE + "opt-outs/import/", views.type1_import, name="type1-import"),
    path(PRACTICE + "opt-outs/export.csv", views.type1_export, name="type1-export"),
    path(PRACTICE + "opt-outs/fhir.json", views.type1_fhir, name="type1-fhir"),
    path(PRACTICE + "opt-outs/rate/", views.type1_rate, name="type1-rate"),
    path(PRACTICE + "opt-outs/requests/", views.type1_requests, name="type1-requests"),
    path(
        PRACTICE + "opt-outs/requests/<str:reference>/",
        views.type1_request_detail,
        name="type1-request",
    ),
    path("national-opt-outs/", views.national_checks, name="national-checks"),
    path("national-opt-outs/<int:pk>/", views.national_check, name="national-check"),
]
