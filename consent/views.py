"""The consent pages: practice managers' opt-out pages, the public practice page, checks."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from consent import charts, fhir, forms, permissions, selectors, services
from consent.exports import type1_csv
from consent.models import NationalOptOutCheck, Patient, Type1Event, Type1Request
from governance.models import Organisation
from notices import selectors as notice_selectors
from notices.views import SERVICE_NAME as PUBLIC_SERVICE_NAME
from phm_portal.errors import DomainError, NotAllowedNow
from phm_portal.forms import add_service_error
from phm_portal.lib.client import client_address

NATIONAL_OPT_OUT_URL = "https://www.nhs.uk/your-nhs-data-matters/"
NATIONAL_OPT_OUT_PHONE = "0300 3035678"


def _refusal_status(exc: Exception) -> int:
    return 409 if isinstance(exc, NotAllowedNow) else 400


# --- practice managers ----------------------------------------------------------------------
@login_required
@require_http_methods(["GET"])
def type1_list(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    status = request.GET.get("status", "opted_out")
    if status not in ("opted_out", "withdrawn", "all"):
        status = "opted_out"
    qs = selectors.type1_current(practice, status=None if status == "all" else status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    numbers = selectors.nhs_numbers_of(e.patient_id for e in page.object_list)
    rows = [(e, numbers[e.patient_id]) for e in page.object_list]
    return render(
        request,
        "consent/type1_list.html",
        {
            "practice": practice,
            "page": page,
            "rows": rows,
            "status": status,
            "lookup_form": forms.LookupForm(),
            "pending_requests": selectors.type1_request_queue(practice).count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def type1_lookup(request: HttpRequest, ods_code: str) -> HttpResponse:
    """Find a patient by NHS number (POSTed, so the number never sits in a URL or a log)."""
    practice = permissions.get_practice_for_user(request.user, ods_code)
    form = forms.LookupForm(request.POST or None)
    not_found = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            number = services.nhs_number_clean(form.cleaned_data["nhs_number"])
        except DomainError as exc:
            add_service_error(form, exc)
            status = 400
        else:
            patient = selectors.patient_by_nhs_number(number)
            if patient and Type1Event.objects.filter(practice=practice, patient=patient).exists():
                return redirect("type1-patient", ods_code=practice.ods_code, patient_id=patient.pk)
            not_found = number
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "consent/type1_lookup.html",
        {"practice": practice, "form": form, "not_found": not_found},
        status=status,
    )


@login_required
def type1_patient(request: HttpRequest, ods_code: str, patient_id: int) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    patient = get_object_or_404(Patient, pk=patient_id)
    history = selectors.type1_history(practice, [patient.pk]).get(patient.pk)
    if not history:
        raise Http404("No such patient at this practice.")
    current = history[-1]
    return render(
        request,
        "consent/type1_patient.html",
        {
            "practice": practice,
            "patient": patient,
            "nhs_number": selectors.nhs_number_of(patient),
            "history": history,
            "current": current,
            "opted_out": current.event == Type1Event.Event.DISSENT,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def type1_record(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    initial = {}
    if request.method == "GET" and request.GET.get("patient"):
        patient = Patient.objects.filter(
            pk=request.GET["patient"], type1_events__practice=practice
        ).first()
        if patient is not None:
            initial["nhs_number"] = selectors.nhs_number_of(patient)
        if request.GET.get("event") in Type1Event.Event.values:
            initial["event"] = request.GET["event"]
    form = forms.Type1RecordForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                event = services.type1_opt_out_record(
                    actor=request.user,
                    practice=practice,
                    nhs_number=data["nhs_number"],
                    event=data["event"],
                    method=data["method"],
                    recorded_on=data["recorded_on"],
                )
            except (DomainError, ValidationError) as exc:
                add_service_error(form, exc)
                status = _refusal_status(exc)
            else:
                messages.success(request, f"{event.get_event_display()} recorded.")
                return redirect(
                    "type1-patient", ods_code=practice.ods_code, patient_id=event.patient_id
                )
        else:
            status = 400
    return render(
        request, "consent/type1_record.html", {"practice": practice, "form": form}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def type1_import(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    form = forms.ImportForm(request.POST or None, request.FILES or None)
    report = None
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is not None and upload.size > settings.PHM_OPT_OUT_FILE_MAX_BYTES:
            form.add_error(
                "file",
                f"The file is too large: the limit is {settings.PHM_OPT_OUT_FILE_MAX_BYTES} bytes.",
            )
            status = 413
        elif form.is_valid():
            try:
                report = services.type1_import(
                    actor=request.user,
                    practice=practice,
                    data=upload.read(),
                    filename=upload.name or "",
                    partial=form.cleaned_data["partial"],
                )
            except DomainError as exc:
                add_service_error(form, exc)
                status = 400
            else:
                status = 200 if report.stored else 400
        else:
            status = 400
    return render(
        request,
        "consent/type1_import.html",
        {"practice": practice, "form": form, "report": report},
        status=status,
    )


@login_required
def type1_export(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    text, count = type1_csv(practice)
    services.type1_export_logged(actor=request.user, practice=practice, what="csv", rows=count)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="type1-opt-outs-{practice.ods_code}.csv"'
    )
    return response


@login_required
def type1_fhir(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    bundle, count = fhir.type1_bundle(practice)
    services.type1_export_logged(actor=request.user, practice=practice, what="fhir", rows=count)
    response = HttpResponse(json.dumps(bundle, indent=2), content_type="application/fhir+json")
    response["Content-Disposition"] = (
        f'attachment; filename="type1-opt-outs-{practice.ods_code}.fhir.json"'
    )
    return response


@login_required
@require_http_methods(["GET", "POST"])
def type1_rate(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    form = forms.ListSizeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.practice_list_size_record(
                    actor=request.user,
                    practice=practice,
                    as_of=form.cleaned_data["as_of"],
                    patients=form.cleaned_data["patients"],
                )
            except DomainError as exc:
                add_service_error(form, exc)
                status = 400
            else:
                messages.success(request, "List size recorded.")
                return redirect("type1-rate", ods_code=practice.ods_code)
        else:
            status = 400
    points = selectors.type1_rate_series(practice)
    return render(
        request,
        "consent/type1_rate.html",
        {
            "practice": practice,
            "points": points,
            "chart": charts.rate_chart(points),
            "form": form,
        },
        status=status,
    )


@login_required
def type1_requests(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    page = Paginator(selectors.type1_request_queue(practice), 25).get_page(request.GET.get("page"))
    rows = [(r, selectors.type1_request_details(r)) for r in page.object_list]
    return render(
        request, "consent/type1_requests.html", {"practice": practice, "page": page, "rows": rows}
    )


@login_required
@require_http_methods(["GET", "POST"])
def type1_request_detail(request: HttpRequest, ods_code: str, reference: str) -> HttpResponse:
    practice = permissions.get_practice_for_user(request.user, ods_code)
    req = get_object_or_404(Type1Request, practice=practice, reference=reference.upper())
    details = selectors.type1_request_details(req)
    action = request.POST.get("action")
    record_form = forms.RequestRecordForm(
        request.POST if action == "record" else None,
        initial={
            "nhs_number": details.get("nhs_number"),
            "recorded_on": timezone.localtime(req.submitted_at).date().isoformat(),
        },
    )
    decline_form = forms.RequestDeclineForm(request.POST if action == "decline" else None)
    status = 200
    if request.method == "POST":
        form = record_form if action == "record" else decline_form
        if action not in ("record", "decline"):
            status = 400
        elif form.is_valid():
            try:
                if action == "record":
                    services.type1_request_record(
                        actor=request.user,
                        request=req,
                        nhs_number=form.cleaned_data["nhs_number"],
                        recorded_on=form.cleaned_data["recorded_on"],
                    )
                    messages.success(request, f"Opt-out recorded for request {req.reference}.")
                else:
                    services.type1_request_decline(
                        actor=request.user, request=req, reason=form.cleaned_data["reason"]
                    )
                    messages.success(request, f"Request {req.reference} declined.")
            except (DomainError, ValidationError) as exc:
                add_service_error(form, exc)
                status = _refusal_status(exc)
            else:
                return redirect("type1-requests", ods_code=practice.ods_code)
        else:
            status = 400
    return render(
        request,
        "consent/type1_request_detail.html",
        {
            "practice": practice,
            "req": req,
            "details": details,
            "record_form": record_form,
            "decline_form": decline_form,
        },
        status=status,
    )


# --- the public practice page -----------------------------------------------------------------


def _public_context() -> dict:
    """Name the patients' side of the portal as the notices do: they share a header and footer."""
    return {"service_name": PUBLIC_SERVICE_NAME}


def _public_practice(ods_code: str) -> Organisation:
    practice = Organisation.objects.filter(
        ods_code=ods_code.upper(), kind=Organisation.Kind.GP_PRACTICE
    ).first()
    if practice is None:
        raise Http404("No such GP practice.")
    return practice


@require_http_methods(["GET", "POST"])
def practice_public(request: HttpRequest, ods_code: str) -> HttpResponse:
    """A practice's public page: both kinds of opt-out, and the Type 1 request form."""
    practice = _public_practice(ods_code)
    form = forms.PatientRequestForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if services.type1_request_rate_limited(client=client_address(request)):
            return render(
                request,
                "consent/rate_limited.html",
                {
                    **_public_context(),
                    "practice": practice,
                    "per_hour": settings.PHM_OPT_OUT_REQUESTS_PER_HOUR,
                },
                status=429,
            )
        if form.is_valid():
            data = form.cleaned_data
            try:
                req = services.type1_request_submit(
                    practice=practice,
                    name=data["name"],
                    date_of_birth=data["date_of_birth"],
                    contact=data["contact"],
                    nhs_number=data["nhs_number"],
                )
            except DomainError as exc:
                add_service_error(form, exc)
                status = 400
            else:
                request.session["type1_request_reference"] = req.reference
                return redirect("practice-public-requested", ods_code=practice.ods_code)
        else:
            status = 400
    return render(
        request,
        "consent/practice_public.html",
        {
            **_public_context(),
            "practice": practice,
            # Each with has_notice: the page links to the notices patients can read.
            "programmes": list(notice_selectors.programmes_with_notice(practice)),
            "form": form,
            "national_url": NATIONAL_OPT_OUT_URL,
            "national_phone": NATIONAL_OPT_OUT_PHONE,
        },
        status=status,
    )


def practice_public_requested(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = _public_practice(ods_code)
    reference = request.session.get("type1_request_reference")
    if not reference:
        return redirect("practice-public", ods_code=practice.ods_code)
    return render(
        request,
        "consent/practice_requested.html",
        {**_public_context(), "practice": practice, "reference": reference},
    )


# --- national data opt-out checks (CSU admins) ----------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def national_checks(request: HttpRequest) -> HttpResponse:
    permissions.require_national_checker(request.user)
    # ?programme=<slug> (the link of a job refused for want of a check) preselects it.
    initial = {"programme": request.GET.get("programme", "")[:100]}
    form = forms.NationalCheckStartForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                check = services.national_check_start(
                    actor=request.user, programme=form.cleaned_data["programme"]
                )
            except DomainError as exc:
                add_service_error(form, exc)
                status = _refusal_status(exc)
            else:
                return redirect("national-check", pk=check.pk)
        else:
            status = 400
    checks = Paginator(
        NationalOptOutCheck.objects.select_related("programme", "created_by"), 25
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "consent/national_checks.html",
        {
            "form": form,
            "page": checks,
            "days": settings.PHM_NATIONAL_OPT_OUT_DAYS,
            "today": timezone.localdate(),
            "mesh": bool(settings.PHM_MESH_URL),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def national_check(request: HttpRequest, pk: int) -> HttpResponse:
    permissions.require_national_checker(request.user)
    check = get_object_or_404(NationalOptOutCheck.objects.select_related("programme"), pk=pk)
    form = forms.NationalCheckReturnedForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("returned")
        if upload is not None and upload.size > settings.PHM_OPT_OUT_FILE_MAX_BYTES:
            form.add_error(
                "returned",
                f"The file is too large: the limit is {settings.PHM_OPT_OUT_FILE_MAX_BYTES} bytes.",
            )
            status = 413
        elif form.is_valid():
            try:
                check = services.national_check_complete(
                    actor=request.user,
                    check=check,
                    returned=upload.read(),
                    checked_on=form.cleaned_data["checked_on"],
                )
            except DomainError as exc:
                add_service_error(form, exc)
                if isinstance(exc.details, list):
                    for line in exc.details[:20]:
                        form.add_error(None, f"Line {line['line']}: {line['error']}")
                status = _refusal_status(exc)
            else:
                if check.status == NationalOptOutCheck.Status.FAILED:
                    messages.error(
                        request,
                        "The file is the national service's error, not a list of numbers: "
                        "the check has failed and nothing was imported.",
                    )
                else:
                    messages.success(request, "The returned file was imported.")
                return redirect("national-check", pk=check.pk)
        else:
            status = 400
    return render(
        request,
        "consent/national_check.html",
        {
            "check": check,
            "form": form,
            "submission_url": reverse("api-national-check-submission", kwargs={"pk": check.pk}),
            "mesh_mailbox": settings.PHM_MESH_MAILBOX,
            "ndop_mailbox": settings.PHM_NDOP_MAILBOX,
            "ndop_workflow": settings.PHM_NDOP_WORKFLOW_ID,
            "reply_hours": settings.PHM_NDOP_REPLY_HOURS,
            "poll_minutes": max(1, settings.PHM_MESH_POLL_SECONDS // 60),
        },
        status=status,
    )
