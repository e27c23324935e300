"""Pages of the destruction app: a programme's destruction, a run's progress, certificates, /verify/."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_http_methods

from datasets import selectors as dataset_selectors
from datasets import services as dataset_services
from destruction import permissions as perms
from destruction import selectors, services
from destruction.api import pdf_response
from destruction.models import Certificate, DestructionStep
from destruction.services.steps import PART_TITLES
from governance import permissions as governance_perms
from governance.models import Programme
from phm_portal.errors import DomainError
from phm_portal.forms import PortalForm, add_service_error


class DestroyForm(PortalForm):
    early = forms.BooleanField(
        required=False, label="Destroy the data before the programme's end date"
    )
    reason = forms.CharField(
        required=False,
        label="Why the data must be destroyed before the end",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )
    confirm = forms.BooleanField(
        label="I understand that every extract, output and key of this programme will be "
        "destroyed and cannot be recovered",
        error_messages={"required": "Tick the box to confirm that the data is to be destroyed."},
    )


@login_required
def programme_destruction(request: HttpRequest, slug: str) -> HttpResponse:
    """The CSU admin's page: what there is to destroy, whether it may go now, the runs."""
    programme = perms.get_programme_for_destruction(request.user, slug)
    # What holds even early destruction (a job still active) is what the page must say.
    early_blocker = services.programme_destruction_blocker(programme=programme, early=True)
    return render(
        request,
        "destruction/programme.html",
        {
            "programme": programme,
            "preview": selectors.destruction_preview(programme),
            "blocker": services.programme_destruction_blocker(programme=programme),
            "early_blocker": early_blocker,
            "early_possible": early_blocker is None,
            "runs": programme.destruction_runs.select_related("requested_by").order_by(
                "-requested_at"
            ),
            "jobs_to_cancel": _jobs_to_cancel(request.user, programme),
        },
    )


def _jobs_to_cancel(user, programme: Programme) -> list:
    """Return the programme's active jobs not yet being cancelled, if the person may cancel."""
    if programme.status == Programme.Status.DESTROYED or not user.can("run_pseudonymisation"):
        return []
    return [j for j in dataset_selectors.programme_active_jobs(programme) if not j.cancel_requested]


@login_required
@require_http_methods(["GET", "POST"])
def programme_destruction_cancel_jobs(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for confirmation (GET), then cancel the jobs that hold destruction (POST)."""
    programme = perms.get_programme_for_destruction(request.user, slug)
    governance_perms.require(request.user, "run_pseudonymisation")
    if request.method == "POST":
        jobs = dataset_services.programme_jobs_cancel(actor=request.user, programme=programme)
        if not jobs:
            messages.info(request, "No pseudonymisation job of the programme is active now.")
        ended = sum(job.status == job.Status.CANCELLED for job in jobs)
        stopping = len(jobs) - ended
        if ended:
            messages.success(
                request,
                f"{ended} pseudonymisation job{pluralize(ended)} cancelled. Nothing of "
                f"{'them' if ended > 1 else 'it'} was published.",
            )
        if stopping:
            messages.info(
                request,
                f"{stopping} pseudonymisation job{pluralize(stopping)} "
                f"{'are' if stopping > 1 else 'is'} being cancelled: "
                f"{'they stop' if stopping > 1 else 'it stops'} within a minute or two, then "
                "destruction may start.",
            )
        return redirect("destruction-programme", slug=programme.slug)
    return render(
        request,
        "destruction/cancel_jobs.html",
        {"programme": programme, "jobs": _jobs_to_cancel(request.user, programme)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def programme_destruction_confirm(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask for confirmation (GET), then start the destruction (POST)."""
    programme = perms.get_programme_for_destruction(request.user, slug)
    form = DestroyForm(request.POST if request.method == "POST" else None)
    status = 200
    ended = services.programme_destruction_blocker(programme=programme) is None
    if request.method == "POST" and form.is_valid():
        try:
            run = services.programme_destroy(
                actor=request.user,
                programme=programme,
                early=form.cleaned_data["early"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            add_service_error(form, exc)
            status = exc.status_code
        else:
            messages.success(
                request, f"Destruction of {programme.name} has started (run {run.pk})."
            )
            return redirect("destruction-run", pk=run.pk)
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "destruction/confirm.html",
        {
            "programme": programme,
            "form": form,
            "ended": ended,
            "preview": selectors.destruction_preview(programme),
            "jobs_to_cancel": _jobs_to_cancel(request.user, programme),
        },
        status=status,
    )


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = perms.get_run_for_user(request.user, pk)
    certificate = Certificate.objects.filter(run=run).first()
    return render(
        request,
        "destruction/run.html",
        {
            "run": run,
            "steps": [(step, _evidence(step.evidence)) for step in run.steps.order_by("index")],
            "certificate": certificate,
            "active": run.status in run.ACTIVE,
            "may_resume": run.status == run.Status.FAILED and request.user.can("run_destruction"),
            "step_names": dict(DestructionStep.Name.choices),
        },
    )


# Evidence keys whose label is not the key in words (acronyms, articles).
EVIDENCE_LABELS = {
    "manifest_sha256": "Manifest SHA-256",
    "pdf_sha256": "PDF SHA-256",
    "controllers_without_dpo_email": "Controllers without a DPO email address",
}


def _number(value: object) -> str:
    """Return a count with thousands separators; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _words(value: object) -> str:
    """Return a piece of evidence in words: lists joined, mappings as "what: value"."""
    if isinstance(value, list):
        return ", ".join(_words(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(
            f"{k.replace('_', ' ')}: {f'({_words(v)})' if isinstance(v, dict) else _words(v)}"
            for k, v in value.items()
        )
    return _number(value)


def _evidence(evidence: dict) -> list[tuple[str, str]]:
    """Return a step's evidence as (what, value) lines a person can read.

    Evidence given app by app ("apps", and the manifest's "totals") is a line per app that
    has something to say, named as the certificate names its part.
    """
    lines = []
    for key, value in evidence.items():
        label = EVIDENCE_LABELS.get(key) or key.replace("_", " ").capitalize()
        if key == "checks":
            text = "; ".join(
                f"{c['check']} ({'passed' if c['passed'] else 'FAILED'})" for c in value
            )
        elif key in ("apps", "totals") and isinstance(value, dict):
            lines.extend(
                (PART_TITLES.get(app, app), _words(part))
                for app, part in value.items()
                if isinstance(part, dict) and part
            )
            continue
        else:
            text = _words(value)
        lines.append((label, text))
    return lines


@login_required
def certificate_pdf(request: HttpRequest, serial: str) -> HttpResponse:
    return pdf_response(perms.get_certificate_for_user(request.user, serial))


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Anyone checks a certificate: genuine, unmodified, which programme and run."""
    result = None
    error = None
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose the certificate PDF to check."
            status = 400
        else:
            try:
                result = selectors.certificate_verify(data=upload.read())
            except DomainError as exc:  # too large, or not a readable PDF
                error, status = exc.message, exc.status_code
    return render(
        request, "destruction/verify.html", {"result": result, "error": error}, status=status
    )


def programme_destroyed_note(programme: Programme) -> dict | None:
    """Return when the programme's data was destroyed, for pages that mention it."""
    run = selectors.programme_destruction(programme)
    if run is None:
        return None
    certificate = Certificate.objects.filter(run=run).first()
    return {"at": run.destroyed_at, "serial": certificate.serial if certificate else None}
