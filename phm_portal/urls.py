from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from consent import urls as consent_urls
from datasets import api as datasets_api
from datasets import views as datasets_views
from destruction import api as destruction_api
from destruction import views as destruction_views
from governance import api as governance_api
from governance import urls as governance_urls
from governance import views as governance_views
from governance.views import api_tokens as api_token_views
from notices import api as notices_api
from notices import views as notices_views
from phm_portal import api as portal_api
from phm_portal import twofactor
from phm_portal import views as portal_views

router = DefaultRouter()
router.register("organisations", governance_api.OrganisationViewSet, basename="api-organisation")
router.register("legal-bases", governance_api.LegalBasisViewSet, basename="api-legal-basis")
router.register("programmes", governance_api.ProgrammeViewSet, basename="api-programme")
router.register(
    r"programmes/(?P<programme_slug>[-a-z0-9]+)/participants",
    governance_api.ParticipantViewSet,
    basename="api-participant",
)
router.register("users", governance_api.UserViewSet, basename="api-user")
# The caller's own API tokens: list and revoke.
router.register("auth/tokens", governance_api.ApiTokenViewSet, basename="api-auth-token")
# --- datasets (issue 6) ---
router.register("datasets", datasets_api.DatasetViewSet, basename="api-dataset")
router.register("jobs", datasets_api.JobViewSet, basename="api-job")
# --- data flows (issue 3) ---
router.register("data-flows", governance_api.DataFlowViewSet, basename="api-data-flow")
router.register("dpias", governance_api.DPIAViewSet, basename="api-dpia")
router.register(
    "sharing-agreements", governance_api.SharingAgreementViewSet, basename="api-sharing-agreement"
)
# --- notices (issue 5) ---
router.register(
    r"programmes/(?P<programme_slug>[-a-z0-9]+)/notices",
    notices_api.ProgrammeNoticeViewSet,
    basename="api-programme-notice",
)
router.register("notices", notices_api.NoticeVersionViewSet, basename="api-notice")

api_v1 = [
    path("auth/token/", governance_api.ObtainToken.as_view(), name="api-token"),
    path("me/", governance_api.MeView.as_view(), name="api-me"),
    path("audit/", portal_api.AuditEventList.as_view(), name="api-audit"),
    path("audit/verify/", portal_api.AuditVerify.as_view(), name="api-audit-verify"),
    path(
        "audit/checkpoints/",
        portal_api.AuditCheckpointList.as_view(),
        name="api-audit-checkpoints",
    ),
    path(
        "practices/<str:ods_code>/reidentify/",
        datasets_api.Reidentify.as_view(),
        name="api-reidentify",
    ),
    # --- records of processing (issue 3) ---
    path(
        "organisations/<str:ods_code>/record-of-processing/",
        governance_api.RecordOfProcessingView.as_view(),
        name="api-record-of-processing",
    ),
    *consent_urls.api_urls,
    # --- destruction (issue 7) ---
    path(
        "programmes/<slug:slug>/destruction/",
        destruction_api.ProgrammeDestruction.as_view(),
        name="api-programme-destruction",
    ),
    path(
        "destruction-runs/<int:pk>/",
        destruction_api.DestructionRunDetail.as_view(),
        name="api-destruction-run",
    ),
    path(
        "certificates/verify/",
        destruction_api.CertificateVerify.as_view(),
        name="api-certificate-verify",
    ),
    path(
        "certificates/<str:serial>/",
        destruction_api.CertificateDetail.as_view(),
        name="api-certificate",
    ),
    path(
        "certificates/<str:serial>/pdf/",
        destruction_api.CertificatePdf.as_view(),
        name="api-certificate-pdf",
    ),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", governance_views.home, name="home"),
    path("health/", governance_views.health, name="health"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", twofactor.setup, name="two-factor-setup"),
    path("accounts/two-factor/verify/", twofactor.verify, name="two-factor-verify"),
    path("accounts/api-tokens/", api_token_views.api_token_list, name="api-tokens"),
    path(
        "accounts/api-tokens/<int:pk>/revoke/",
        api_token_views.api_token_revoke,
        name="api-token-revoke",
    ),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(post_reset_login=False),
        name="password_reset_confirm",
    ),
    path(
        "accounts/set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("organisations/", governance_views.organisation_list, name="organisation-list"),
    path(
        "organisations/<str:ods_code>/",
        governance_views.organisation_detail,
        name="organisation-detail",
    ),
    path("programmes/", governance_views.programme_list, name="programme-list"),
    path("programmes/<slug:slug>/", governance_views.programme_detail, name="programme-detail"),
    path("people/", governance_views.user_list, name="user-list"),
    # --- data flows and records of processing (issue 3) ---
    path("data-flows/", governance_views.data_flow_list, name="data-flow-list"),
    path("data-flows/new/", governance_views.data_flow_create, name="data-flow-create"),
    path("data-flows/<int:pk>/", governance_views.data_flow_detail, name="data-flow-detail"),
    path("data-flows/<int:pk>/edit/", governance_views.data_flow_edit, name="data-flow-edit"),
    path(
        "data-flows/<int:pk>/<slug:action>/",
        governance_views.data_flow_transition,
        name="data-flow-transition",
    ),
    re_path(
        r"^organisations/(?P<ods_code>[A-Za-z0-9]{1,20})/record-of-processing\.(?P<fmt>csv|json)$",
        governance_views.record_of_processing_download,
        name="record-of-processing-download",
    ),
    # --- assurance (issue 17): DPIAs, sharing agreements, a programme's conditions ---
    *governance_urls.page_urls,
    path("audit/", portal_views.audit_list, name="audit-list"),
    # --- datasets (issue 6) ---
    path("datasets/", datasets_views.dataset_list, name="dataset-list"),
    path("datasets/upload/", datasets_views.dataset_upload, name="dataset-upload"),
    path(
        "datasets/demo-extracts/<int:flow_id>.csv",
        datasets_views.dataset_demo_extract,
        name="dataset-demo-extract",
    ),
    path("datasets/<uuid:dataset_id>/", datasets_views.dataset_detail, name="dataset-detail"),
    path(
        "datasets/<uuid:dataset_id>/pseudonymise/",
        datasets_views.dataset_pseudonymise,
        name="dataset-pseudonymise",
    ),
    path("jobs/<uuid:job_id>/", datasets_views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/cancel/", datasets_views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/output.csv", datasets_views.job_output, name="job-output"),
    path("practices/<str:ods_code>/reidentify/", datasets_views.reidentify, name="reidentify"),
    # --- notices (issue 5): the public side, then the DPO's pages ---
    path("notices/", notices_views.search, name="notice-search"),
    path("notices/<slug:slug>/", notices_views.current, name="notice-current"),
    path("notices/<slug:slug>/v<int:number>/", notices_views.version_page, name="notice-version"),
    path(
        "notices/<slug:slug>/v<int:number>/changes/",
        notices_views.changes_page,
        name="notice-changes",
    ),
    path("notices/<slug:slug>/v<int:number>.pdf", notices_views.version_pdf, name="notice-pdf"),
    path(
        "programmes/<slug:slug>/notice/",
        notices_views.programme_notices,
        name="notice-programme",
    ),
    path("notice-versions/<int:pk>/", notices_views.manage, name="notice-manage"),
    path("notice-versions/<int:pk>/publish/", notices_views.publish, name="notice-publish"),
    path("notice-versions/<int:pk>/withdraw/", notices_views.withdraw, name="notice-withdraw"),
    # --- destruction (issue 7) ---
    path(
        "programmes/<slug:slug>/destruction/",
        destruction_views.programme_destruction,
        name="destruction-programme",
    ),
    path(
        "programmes/<slug:slug>/destruction/confirm/",
        destruction_views.programme_destruction_confirm,
        name="destruction-confirm",
    ),
    path(
        "programmes/<slug:slug>/destruction/cancel-jobs/",
        destruction_views.programme_destruction_cancel_jobs,
        name="destruction-cancel-jobs",
    ),
    path("destruction-runs/<int:pk>/", destruction_views.run_detail, name="destruction-run"),
    path(
        "certificates/<str:serial>.pdf", destruction_views.certificate_pdf, name="certificate-pdf"
    ),
    path("verify/", destruction_views.verify, name="certificate-verify"),
    *consent_urls.page_urls,
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "phm_portal.errorviews.bad_request"
handler403 = "phm_portal.errorviews.forbidden"
handler404 = "phm_portal.errorviews.not_found"
handler500 = "phm_portal.errorviews.server_error"
