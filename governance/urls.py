"""The governance app's assurance pages: included by phm_portal/urls.py (`*page_urls`)."""

from __future__ import annotations

from django.urls import path

from governance.views import assurance

page_urls = [
    path(
        "programmes/<slug:slug>/assurance/",
        assurance.programme_assurance,
        name="programme-assurance",
    ),
    path(
        "organisations/<str:ods_code>/assurance/",
        assurance.organisation_assurance_edit,
        name="organisation-assurance-edit",
    ),
    # DPIAs (UK GDPR Art 35)
    path("programmes/<slug:slug>/dpias/", assurance.dpia_list, name="dpia-list"),
    path("programmes/<slug:slug>/dpias/new/", assurance.dpia_create, name="dpia-create"),
    path("dpias/<int:pk>/", assurance.dpia_detail, name="dpia-detail"),
    path("dpias/<int:pk>/edit/", assurance.dpia_edit, name="dpia-edit"),
    path("dpias/<int:pk>/dpo-advice/", assurance.dpia_dpo_advice, name="dpia-dpo-advice"),
    path("dpias/<int:pk>/sign-off/<str:ods_code>/", assurance.dpia_sign_off, name="dpia-sign-off"),
    path("dpias/<int:pk>/start-review/", assurance.dpia_start_review, name="dpia-start-review"),
    path("dpias/<int:pk>/document.pdf", assurance.dpia_document, name="dpia-document"),
    # Data sharing agreements
    path(
        "programmes/<slug:slug>/sharing-agreements/",
        assurance.agreement_list,
        name="sharing-agreement-list",
    ),
    path(
        "programmes/<slug:slug>/sharing-agreements/new/",
        assurance.agreement_create,
        name="sharing-agreement-create",
    ),
    path(
        "sharing-agreements/<int:pk>/", assurance.agreement_detail, name="sharing-agreement-detail"
    ),
    path(
        "sharing-agreements/<int:pk>/edit/",
        assurance.agreement_edit,
        name="sharing-agreement-edit",
    ),
    path(
        "sharing-agreements/<int:pk>/sign/<str:ods_code>/",
        assurance.agreement_sign,
        name="sharing-agreement-sign",
    ),
    path(
        "sharing-agreements/<int:pk>/document.pdf",
        assurance.agreement_document,
        name="sharing-agreement-document",
    ),
]
