"""Pages of the datasets app: upload, demo extracts, extracts, jobs, downloads, re-identification."""

from __future__ import annotations

import io
import json
import random

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from datasets import held_uploads, selectors, services
from datasets import permissions as perms
from datasets.uploads import EncryptedUpload, EncryptingUploadHandler
from governance import permissions as governance_perms
from governance.models import DataFlow, Programme, User
from phm_portal.errors import DomainError
from phm_portal.forms import PortalForm, add_service_error
from phm_portal.lib.csv_safe import SafeWriter

RULES = [("year", "Year of birth"), ("age_band_5", "5-year age band")]


class UploadForm(PortalForm):
    data_flow = forms.ModelChoiceField(queryset=DataFlow.objects.none(), label="Approved data flow")
    nhs_number = forms.CharField(label="Column with the NHS number", initial="nhs_number")
    practice = forms.CharField(
        label="Column with the patient's registered practice (ODS code)", initial="practice"
    )
    drop = forms.CharField(
        label="Direct identifier columns to drop",
        required=False,
        help_text="Column names separated by commas, e.g. forename, surname, address",
    )
    date_of_birth = forms.CharField(label="Column with the date of birth", required=False)
    date_rule = forms.ChoiceField(
        label="Generalise the date of birth to", choices=RULES, required=False
    )
    postcode = forms.CharField(
        label="Column with the postcode",
        required=False,
        help_text="Kept as its district only, e.g. LS2",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        flows = DataFlow.objects.carrying_data().select_related(
            "source", "destination", "programme"
        )
        suspended = DataFlow.objects.filter(status=DataFlow.Status.SUSPENDED).select_related(
            "source", "destination", "programme"
        )
        if not user.can("read_all"):
            flows = flows.filter(source__in=governance_perms.organisations_of(user))
            suspended = suspended.filter(source__in=governance_perms.organisations_of(user))
        self.fields["data_flow"].queryset = flows
        # Shown beside the choice, with why: no extract is uploaded on them until reinstated.
        self.suspended_flows = list(suspended.filter(programme__status__in=Programme.OPEN_STATUSES))

    def clean(self):
        data = super().clean()
        if "data_flow" in self.errors:
            chosen = str(self.data.get("data_flow", ""))
            for flow in self.suspended_flows:
                if str(flow.pk) == chosen:
                    del self.errors["data_flow"]
                    self.add_error(
                        "data_flow",
                        f"Data flow #{flow.pk} is suspended: no extract can be uploaded on it "
                        f"until it is reinstated. {flow.suspension_reason}".strip(),
                    )
        return data

    def field_naming(self, column: str) -> str | None:
        """Return the mapping field that names the column, or None."""
        data = self.cleaned_data
        for name in ("nhs_number", "practice", "date_of_birth", "postcode"):
            if (data.get(name) or "").strip() == column:
                return name
        if column in [c.strip() for c in (data.get("drop") or "").split(",")]:
            return "drop"
        return None

    def mapping(self) -> dict:
        data = self.cleaned_data
        generalise = []
        if data.get("date_of_birth"):
            generalise.append(
                {"column": data["date_of_birth"].strip(), "rule": data.get("date_rule") or "year"}
            )
        if data.get("postcode"):
            generalise.append({"column": data["postcode"].strip(), "rule": "district"})
        return {
            "nhs_number": data["nhs_number"].strip(),
            "practice": data["practice"].strip(),
            "drop": [c.strip() for c in (data.get("drop") or "").split(",") if c.strip()],
            "generalise": generalise,
        }


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(perms.datasets_of(request.user).order_by("-uploaded_at"), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "datasets/dataset_list.html", {"page": page})


@csrf_exempt
@login_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """Upload an extract; the file is encrypted while it streams in (so CSRF is checked after)."""
    if request.method == "POST":
        request.upload_handlers = [EncryptingUploadHandler(request)]
    return _dataset_upload(request)


HELD_UPLOAD_SESSION_KEY = "datasets.held_upload"


@csrf_protect
@require_http_methods(["GET", "POST"])
def _dataset_upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST if request.method == "POST" else None, user=request.user)
    file_columns = None
    held = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        handler = request.upload_handlers[0]
        try:
            if isinstance(handler, EncryptingUploadHandler) and handler.upload is not None:
                _release_held_upload(request)  # a new file replaces the one kept
                if handler.upload.too_large:
                    message = f"The file is larger than the limit of {handler.limit:,} bytes."
                    return render(
                        request,
                        "datasets/upload.html",
                        {"form": form, "error": message},
                        status=413,
                    )
            elif not isinstance(upload, EncryptedUpload):
                held = _held_upload(request)
            if not isinstance(upload, EncryptedUpload) and held is None:
                form.add_error(None, "Choose the extract file (CSV) to upload.")
            elif form.is_valid():
                flow = perms.get_flow_for_upload(request.user, form.cleaned_data["data_flow"].pk)
                if held is not None:
                    upload = held_uploads.upload_take(hold_id=held.id, user_id=request.user.pk)
                    request.session.pop(HELD_UPLOAD_SESSION_KEY, None)
                    held = None
                if upload is None:
                    form.add_error(None, "Choose the extract file (CSV) to upload.")
                else:
                    try:
                        dataset = services.dataset_upload(
                            actor=request.user,
                            data_flow=flow,
                            upload=upload,
                            mapping=form.mapping(),
                            keep_if_mapping_refused=True,
                        )
                    except (DomainError, ValidationError) as exc:
                        file_columns = _add_upload_error(form, exc)
                        if isinstance(exc, DomainError) and exc.field == "mapping":
                            held = held_uploads.upload_hold(upload=upload, user_id=request.user.pk)
                            request.session[HELD_UPLOAD_SESSION_KEY] = held.id
                    else:
                        messages.success(request, f"{dataset.original_name} is stored, encrypted.")
                        return redirect("dataset-detail", dataset_id=dataset.pk)
        finally:
            if isinstance(upload, EncryptedUpload):
                upload.discard()  # a held upload was moved aside first
    context = {
        "form": form,
        "file_columns": file_columns,
        "held": held,
        "demo_extract_flows": _demo_extract_flows(request.user, form),
    }
    return render(request, "datasets/upload.html", context)


# --- the demo's extracts: synthetic patients of the demo cohorts (demo mode only) -----------
DEMO_EXTRACT_HEADER = [
    "nhs_number",
    "forename",
    "date_of_birth",
    "postcode",
    "practice",
    "event_code",
]
DEMO_FORENAMES = ["Ann", "Bob", "Chloe", "Dev", "Ewa", "Femi", "Grace", "Hamid", "Isla", "Jon"]
DEMO_EVENT_CODES = ["C10..", "H33..", "G30..", "XaZ89", "137R.", "246..", "44P..", "9OX.."]
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters an inward code uses


def _demo_cohort(flow: DataFlow) -> list[str]:
    """Return the demo cohort of the flow's source practice ([] unless it is a demo practice)."""
    from consent.demo import cohort_numbers

    return cohort_numbers(flow.source.ods_code)


def _demo_extract_flows(user: User, form: UploadForm) -> list[DataFlow]:
    """Return the approved flows offered on the page that the person may upload a demo extract on."""
    if not settings.DEMO_MODE:
        return []
    offered = []
    for flow in form.fields["data_flow"].queryset:
        try:
            perms.get_flow_for_upload(user, flow.pk)
        except (PermissionDenied, Http404):
            continue
        if _demo_cohort(flow):
            offered.append(flow)
    return offered


def _demo_extract_csv(flow: DataFlow, numbers: list[str]) -> bytes:
    """Return a synthetic extract of these patients of the flow's source, the same every time.

    One to three events a patient, in the columns of a GP extract (names, dates of birth and
    postcodes made up, the postcode in the practice's district).
    """
    practice = flow.source
    district = (practice.postcode or "ZZ99 3AA").split()[0]
    rng = random.Random(f"demo-extract-{practice.ods_code}")  # noqa: S311 - synthetic data
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(DEMO_EXTRACT_HEADER)
    for number in numbers:
        forename = rng.choice(DEMO_FORENAMES)
        born = f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        inward = f"{rng.randint(1, 9)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
        postcode = f"{district} {inward}"
        for code in rng.sample(DEMO_EVENT_CODES, rng.randint(1, 3)):
            writer.writerow([number, forename, born, postcode, practice.ods_code, code])
    return out.getvalue().encode()


@login_required
def dataset_demo_extract(request: HttpRequest, flow_id: int) -> HttpResponse:
    """Download a synthetic extract to upload on the flow (demo mode only; 404 otherwise)."""
    if not settings.DEMO_MODE:
        raise Http404("Demo extracts exist only in the demo.")
    flow = perms.get_flow_for_upload(request.user, flow_id)
    numbers = _demo_cohort(flow)
    if not flow.is_approved or not numbers:
        raise Http404("There is no demo extract for this data flow.")
    response = HttpResponse(
        _demo_extract_csv(flow, numbers), content_type="text/csv; charset=utf-8"
    )
    name = f"demo-extract-{flow.source.ods_code}-flow-{flow.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _held_upload(request: HttpRequest) -> held_uploads.HeldUpload | None:
    """Return the upload kept for this person if the form names it, else None."""
    hold_id = request.POST.get("held_upload", "")
    if not hold_id or hold_id != request.session.get(HELD_UPLOAD_SESSION_KEY):
        return None
    return held_uploads.upload_held(hold_id=hold_id, user_id=request.user.pk)


def _release_held_upload(request: HttpRequest) -> None:
    hold_id = request.session.pop(HELD_UPLOAD_SESSION_KEY, None)
    if hold_id:
        held_uploads.upload_release(hold_id=hold_id)


def _add_upload_error(form: UploadForm, exc: DomainError | ValidationError) -> list[str] | None:
    """Put the refusal on the form; a missing column goes on the field naming it.

    Return the file's header columns when the refusal was a missing column, else None.
    """
    details = getattr(exc, "details", None)
    if isinstance(exc, DomainError) and isinstance(details, dict) and "column" in details:
        columns = details["columns"]
        field = form.field_naming(details["column"])
        if field is not None:
            form.add_error(
                field,
                f"The file has no column named {details['column']!r}. "
                f"Its columns are: {', '.join(columns)}.",
            )
            return columns
    add_service_error(form, exc)
    return details["columns"] if isinstance(details, dict) and "columns" in details else None


@login_required
def dataset_detail(request: HttpRequest, dataset_id) -> HttpResponse:
    dataset = perms.get_dataset_for_user(request.user, dataset_id)
    jobs = dataset.jobs.order_by("-created_at")
    return render(request, "datasets/dataset_detail.html", {"dataset": dataset, "jobs": jobs})


@login_required
@require_POST
def dataset_pseudonymise(request: HttpRequest, dataset_id) -> HttpResponse:
    governance_perms.require(request.user, "run_pseudonymisation")
    dataset = perms.get_dataset_for_user(request.user, dataset_id)
    try:
        job = services.dataset_pseudonymise(actor=request.user, dataset=dataset)
    except DomainError as exc:
        messages.error(request, _refusal_message(request.user, exc, dataset.data_flow.programme))
        return redirect("dataset-detail", dataset_id=dataset.pk)
    return redirect("job-detail", job_id=job.pk)


def _refusal_message(user: User, exc: DomainError, programme: Programme) -> str:
    """Return the refusal's words; with no national check, a link to start one is added."""
    from consent.permissions import NATIONAL_CHECK_CAPABILITY
    from consent.register import NATIONAL_CHECK_MISSING

    if exc.code != NATIONAL_CHECK_MISSING or not user.can(NATIONAL_CHECK_CAPABILITY):
        return exc.message
    url = f"{reverse('national-checks')}?{urlencode({'programme': programme.slug})}"
    return format_html(
        '{} <a href="{}">Start a national data opt-out check of {}</a>',
        exc.message,
        url,
        programme.name,
    )


@login_required
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = perms.get_job_for_user(request.user, job_id)
    destroyed = job.dataset.data_flow.programme.status == Programme.Status.DESTROYED
    can_download = (
        job.status == job.Status.SUCCEEDED and not destroyed and _may_download(request.user, job)
    )
    return render(
        request,
        "datasets/job_detail.html",
        {
            "job": job,
            "progress": selectors.job_progress(job),
            "active": job.status in job.ACTIVE,
            "can_cancel": job.status in job.ACTIVE and request.user.can("run_pseudonymisation"),
            "can_download": can_download,
            "destroyed": destroyed,
            "invalid_shown": job.invalid_rows[:100],
        },
    )


def _may_download(user, job) -> bool:
    try:
        perms.get_job_for_user(user, job.pk, output=True)
    except Http404:
        return False
    return True


@login_required
@require_http_methods(["GET", "POST"])
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    """Ask for confirmation (GET), then cancel (POST)."""
    governance_perms.require(request.user, "run_pseudonymisation")
    job = perms.get_job_for_user(request.user, job_id)
    if request.method == "POST":
        try:
            services.job_cancel(actor=request.user, job=job)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, "The job is being cancelled. Nothing of it will be published."
            )
        return redirect("job-detail", job_id=job.pk)
    return render(request, "datasets/job_cancel.html", {"job": job})


@login_required
def job_output(request: HttpRequest, job_id) -> HttpResponse:
    job = perms.get_job_for_user(request.user, job_id, output=True)
    try:
        chunks = services.job_output(job=job)
        first = next(chunks, b"")
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("job-detail", job_id=job.pk)

    def stream():
        yield first
        yield from chunks

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pseudonymised-{job.pk}.csv"'
    return response


class ReidentifyForm(PortalForm):
    programme = forms.ModelChoiceField(
        queryset=Programme.objects.none(),
        to_field_name="slug",
        error_messages={
            "invalid_choice": "Choose a programme from the list. A destroyed programme is not "
            "offered: its codes can no longer be re-identified."
        },
    )
    codes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="The codes the programme flagged, one per line or separated by commas.",
    )

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        # A destroyed programme's keys are gone: nothing of it can be re-identified.
        self.fields["programme"].queryset = (
            Programme.objects.filter(participations__organisation=practice)
            .exclude(status=Programme.Status.DESTROYED)
            .distinct()
        )

    def code_list(self) -> list[str]:
        raw = self.cleaned_data["codes"].replace(",", "\n")
        return [c.strip() for c in raw.splitlines() if c.strip()]


@login_required
@require_http_methods(["GET", "POST"])
def reidentify(request: HttpRequest, ods_code: str) -> HttpResponse:
    practice = governance_perms.get_organisation_for_user(
        request.user, ods_code, capability="reidentify"
    )
    form = ReidentifyForm(request.POST or None, practice=practice)
    results = None
    if request.method == "POST" and form.is_valid():
        try:
            found, not_found = services.reidentify(
                actor=request.user,
                practice=practice,
                programme=form.cleaned_data["programme"],
                codes=form.code_list(),
            )
        except DomainError as exc:
            add_service_error(form, exc)
        else:
            results = {"found": found, "not_found": not_found}
    return render(
        request,
        "datasets/reidentify.html",
        {"practice": practice, "form": form, "results": results, "as_json": json.dumps},
    )
