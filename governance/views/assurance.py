"""The assurance pages: a programme's flows and their conditions, DPIAs, sharing agreements,
and an organisation's DSPT status and ICO registration.

The conditions are governance.assurance's; every write is a service of
governance.services (assurance, core); who may do what is governance.permissions'.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from governance import assurance, selectors, services
from governance import permissions as perms
from governance.forms import (
    DPIAForm,
    DPIARiskFormSet,
    DPOAdviceForm,
    OrganisationAssuranceForm,
    SharingAgreementForm,
    transition_form,
)
from governance.models import (
    DPIA,
    DataFlow,
    Organisation,
    Participation,
    Programme,
    SharingAgreement,
    SharingAgreementParty,
    User,
)
from governance.services import assurance as assurance_services
from phm_portal.errors import DomainError
from phm_portal.forms import add_service_error

# Short headings of the conditions, for the columns of the programme's table.
CONDITION_HEADINGS = {
    "dpia": "DPIA",
    "sharing_agreement": "Agreement",
    "source_dspt": "Sender's DSPT",
    "destination_dspt": "Recipient's DSPT",
    "source_ico": "Sender's ICO",
    "destination_ico": "Recipient's ICO",
}
# Flows that no longer carry data and never will: their conditions are not asked.
ENDED_FLOW_STATUSES = (DataFlow.Status.REJECTED, DataFlow.Status.CLOSED)
# The names services give a field, and the form field that shows it.
FIELD_ALIASES = {
    "party_ods_codes": "parties",
    "legal_basis_codes": "legal_bases",
    "data_flow_ids": "data_flows",
    "document_name": "document",
    "dpo_advice": "advice",
    "dpo_advice_followed": "followed",
    "dpo_advice_not_followed_reason": "not_followed_reason",
}


def _add_error(form: forms.Form, exc: DomainError | ValidationError) -> None:
    """Put a service's refusal on the form field it names (by its own or its service name)."""
    if isinstance(exc, DomainError):
        exc.field = FIELD_ALIASES.get(exc.field, exc.field)
        add_service_error(form, exc)
        return
    if hasattr(exc, "error_dict"):
        exc = ValidationError(
            {FIELD_ALIASES.get(field, field): errors for field, errors in exc.error_dict.items()}
        )
    add_service_error(form, exc)


def _status_of(exc: DomainError | ValidationError) -> int:
    return getattr(exc, "status_code", 400)


# --- who may read and act (governance.permissions decides; these ask it) ----------------------
def may_read_programme_assurance(user: User, programme: Programme) -> bool:
    """CSU admins and auditors, and the people of the organisations taking part."""
    return perms.assurance_programmes_of(user).filter(pk=programme.pk).exists()


def _programme_for_reader(user: User, slug: str) -> Programme:
    programme = Programme.objects.filter(slug=slug).first()
    if programme is None:
        raise Http404("No such programme.")
    if not may_read_programme_assurance(user, programme):
        raise PermissionDenied(
            "Only the organisations taking part in this programme, CSU admins and auditors "
            "may read its assurance."
        )
    return programme


def _allowed(check: Callable[[], None]) -> bool:
    try:
        check()
    except PermissionDenied:
        return False
    return True


def _may_draft_dpia(user: User, programme: Programme) -> bool:
    return _allowed(lambda: perms.require_may_draft_dpia(user, programme))


def _may_draft_agreement(user: User, programme: Programme, parties) -> bool:
    return _allowed(lambda: perms.require_may_draft_agreement(user, programme, parties))


def _may_advise(user: User, dpia: DPIA) -> bool:
    return _allowed(lambda: perms.require_dpo_of_controller(user, dpia.programme))


def _signatory_of(user: User, organisation: Organisation) -> bool:
    return user.can("sign_assurance") and perms.is_member(user, organisation)


def _visible_flow_ids(user: User, programme: Programme) -> set[int]:
    return set(
        perms.data_flows_visible_to(user).filter(programme=programme).values_list("pk", flat=True)
    )


def _controllers(programme: Programme) -> list[Organisation]:
    return list(perms.controllers_of(programme).order_by("name"))


def assurance_awaiting(user: User) -> list[dict]:
    """Return the DPIAs and agreements awaiting the person's advice or signature, for their home.

    A signatory: each DPIA ready to be signed off for a controller they act for, and each
    agreement unsigned by a party they act for. A DPO: each DPIA of a programme their
    organisation controls that awaits a DPO's advice.
    """
    mine = perms.organisations_of(user)
    out: list[dict] = []
    if user.can("sign_assurance"):
        ready = (
            DPIA.objects.filter(programme__status__in=Programme.OPEN_STATUSES)
            .filter(
                Q(status=DPIA.Status.DPO_ADVICE)
                | Q(status=DPIA.Status.UNDER_REVIEW, dpo_advice_at__isnull=False)
            )
            .select_related("programme")
            .order_by("programme__name", "title", "pk")
        )
        for dpia in ready:
            signed = set(dpia.sign_offs.values_list("organisation_id", flat=True))
            for organisation in perms.controllers_of(dpia.programme).filter(pk__in=mine):
                if organisation.pk not in signed:
                    out.append(
                        {
                            "what": f"Sign off the DPIA “{dpia.title}” v{dpia.version} for "
                            f"{organisation.display_name}",
                            "programme": dpia.programme,
                            "url": reverse("dpia-detail", args=[dpia.pk]),
                        }
                    )
        parties = (
            SharingAgreementParty.objects.filter(
                organisation__in=mine,
                signed_on__isnull=True,
                agreement__programme__status__in=Programme.OPEN_STATUSES,
            )
            .select_related("agreement__programme", "organisation")
            .order_by("agreement__programme__name", "agreement__title", "pk")
        )
        for party in parties:
            agreement = party.agreement
            out.append(
                {
                    "what": f"Sign the agreement “{agreement.title}” v{agreement.version} for "
                    f"{party.organisation.display_name}",
                    "programme": agreement.programme,
                    "url": reverse("sharing-agreement-detail", args=[agreement.pk]),
                }
            )
    if user.can("advise_on_dpias"):
        waiting = (
            DPIA.objects.filter(
                programme__status__in=Programme.OPEN_STATUSES,
                programme__in=Programme.objects.filter(
                    participations__organisation__in=mine,
                    participations__role__in=Participation.CONTROLLER_ROLES,
                ),
            )
            .filter(
                Q(status=DPIA.Status.DRAFT)
                | Q(status=DPIA.Status.UNDER_REVIEW, dpo_advice_at__isnull=True)
            )
            .select_related("programme")
            .distinct()
            .order_by("programme__name", "title", "pk")
        )
        out += [
            {
                "what": f"Give your advice on the DPIA “{dpia.title}” v{dpia.version}",
                "programme": dpia.programme,
                "url": reverse("dpia-detail", args=[dpia.pk]),
            }
            for dpia in waiting
        ]
    return out


# --- the conditions, on a flow and a programme -----------------------------------------------
def flow_assurance(flow: DataFlow) -> list[assurance.Condition] | None:
    """Return the flow's conditions, or None for a flow that will never carry data again."""
    if flow.status in ENDED_FLOW_STATUSES:
        return None
    return assurance.flow_conditions(flow)


@login_required
def programme_assurance(request: HttpRequest, slug: str) -> HttpResponse:
    """Every flow of the programme and whether each condition holds, with its DPIAs and agreements."""
    programme = _programme_for_reader(request.user, slug)
    visible = _visible_flow_ids(request.user, programme)
    rows = []
    for flow in selectors.programme_flows_for_map(programme, request.user):
        conditions = flow_assurance(flow)
        failing = assurance.failing(conditions) if conditions is not None else []
        rows.append(
            {
                "flow": flow,
                "linked": flow.pk in visible,
                "conditions": conditions,
                "failing": [(CONDITION_HEADINGS[c.condition], c.detail) for c in failing],
            }
        )
    in_effect = [r for r in rows if r["conditions"] is not None]
    return render(
        request,
        "governance/programme_assurance.html",
        {
            "programme": programme,
            "rows": rows,
            "headings": [CONDITION_HEADINGS[c] for c in assurance.CONDITIONS],
            "labels": list(assurance.CONDITIONS.values()),
            "holding": sum(1 for r in in_effect if not r["failing"]),
            "in_effect": len(in_effect),
            "dpias": programme.dpias.prefetch_related("data_flows").order_by("title", "-pk"),
            "agreements": programme.sharing_agreements.prefetch_related(
                "parties__organisation"
            ).order_by("title", "-pk"),
            "may_draft_dpia": programme.is_open and _may_draft_dpia(request.user, programme),
            "may_draft_agreement": programme.is_open and request.user.can("draft_assurance"),
        },
    )


# --- an organisation's DSPT status and ICO registration ---------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def organisation_assurance_edit(request: HttpRequest, ods_code: str) -> HttpResponse:
    """Change an organisation's DSPT status and ICO registration (CSU admins, as the API)."""
    perms.require(request.user, "manage_organisations")
    organisation = Organisation.objects.filter(ods_code=ods_code.upper()).first()
    if organisation is None:
        raise Http404("No such organisation.")
    fields = list(OrganisationAssuranceForm.base_fields)
    form = OrganisationAssuranceForm(
        request.POST or None, initial={f: getattr(organisation, f) for f in fields}
    )
    status_code = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.organisation_update(
                    actor=request.user, organisation=organisation, data=dict(form.cleaned_data)
                )
            except (DomainError, ValidationError) as exc:
                organisation.refresh_from_db()
                _add_error(form, exc)
                status_code = _status_of(exc)
            else:
                messages.success(request, "The DSPT status and ICO registration were saved.")
                return redirect("organisation-detail", ods_code=organisation.ods_code)
        else:
            status_code = 400
    return render(
        request,
        "governance/organisation_assurance_form.html",
        {"organisation": organisation, "form": form},
        status=status_code,
    )


# --- DPIAs ---------------------------------------------------------------------------------
def _document(form: forms.Form) -> dict:
    upload = form.cleaned_data.get("document")
    if not upload:
        return {}
    return {"document": upload.read(), "document_name": _safe_name(upload.name)}


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._ -]+", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    return name.strip(" .")[:200] or "document.pdf"


def document_response(obj: DPIA | SharingAgreement, stem: str) -> HttpResponse:
    if not obj.has_document:
        raise Http404("No document is attached.")
    response = HttpResponse(bytes(obj.document), content_type="application/pdf")
    name = _safe_name(obj.document_name or f"{stem}.pdf")
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def dpia_list(request: HttpRequest, slug: str) -> HttpResponse:
    programme = _programme_for_reader(request.user, slug)
    return render(
        request,
        "governance/dpia_list.html",
        {
            "programme": programme,
            "dpias": programme.dpias.prefetch_related("data_flows").order_by("title", "-pk"),
            "may_draft_dpia": programme.is_open and _may_draft_dpia(request.user, programme),
        },
    )


def _sign_offs(dpia: DPIA, user: User) -> list[dict]:
    """Return each controller of the programme, its sign-off, and whether the person may sign."""
    signed = {s.organisation_id: s for s in dpia.sign_offs.select_related("signatory")}
    # Signed off once the DPO's advice of this round is recorded (governance.services.assurance).
    ready = dpia.programme.is_open and (
        dpia.status == DPIA.Status.DPO_ADVICE
        or (dpia.status == DPIA.Status.UNDER_REVIEW and dpia.dpo_advice_at is not None)
    )
    rows = []
    for organisation in _controllers(dpia.programme):
        sign_off = signed.get(organisation.pk)
        rows.append(
            {
                "organisation": organisation,
                "sign_off": sign_off,
                "may_sign": sign_off is None and ready and _signatory_of(user, organisation),
            }
        )
    return rows


@login_required
def dpia_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dpia = perms.get_dpia_for_user(request.user, pk)
    user = request.user
    editable = dpia.status in (DPIA.Status.DRAFT, DPIA.Status.UNDER_REVIEW)
    open_ = dpia.programme.is_open
    return render(
        request,
        "governance/dpia_detail.html",
        {
            "dpia": dpia,
            "programme": dpia.programme,
            "risks": dpia.risks.all(),
            "flows": dpia.data_flows.select_related("source", "destination").order_by("pk"),
            "visible_flow_ids": _visible_flow_ids(user, dpia.programme),
            "sign_offs": _sign_offs(dpia, user),
            "may_edit": editable and open_ and _may_draft_dpia(user, dpia.programme),
            "may_advise": editable and open_ and _may_advise(user, dpia),
            "may_start_review": dpia.status == DPIA.Status.SIGNED_OFF
            and open_
            and _may_draft_dpia(user, dpia.programme),
        },
    )


def _risk_initial(dpia: DPIA) -> list[dict]:
    return [
        {
            "description": r.description,
            "likelihood": r.likelihood,
            "severity": r.severity,
            "measure": r.measure,
        }
        for r in dpia.risks.all()
    ]


def _risks(formset) -> list[dict]:
    return [
        {k: f.cleaned_data[k] for k in ("description", "likelihood", "severity", "measure")}
        for f in formset.forms
        if f.cleaned_data and not f.cleaned_data.get("DELETE")
    ]


def _dpia_data(form: DPIAForm) -> dict:
    data = dict(form.cleaned_data)
    for name in ("document", "data_flows"):
        data.pop(name, None)
    return data


def _dpia_form_page(
    request: HttpRequest, *, programme: Programme, dpia: DPIA | None, save: Callable
) -> HttpResponse:
    initial = {}
    if dpia is not None:
        initial = {f: getattr(dpia, f) for f in DPIAForm.base_fields if hasattr(dpia, f)}
        initial.pop("document", None)
        initial["data_flows"] = list(dpia.data_flows.values_list("pk", flat=True))
    post = request.method == "POST"
    form = DPIAForm(
        request.POST if post else None,
        request.FILES if post else None,
        initial=initial,
        programme=programme,
    )
    formset = DPIARiskFormSet(
        request.POST if post else None,
        prefix="risks",
        initial=_risk_initial(dpia) if dpia is not None and not post else None,
    )
    status_code = 200
    if post:
        if form.is_valid() and formset.is_valid():
            try:
                saved = save(form, _risks(formset))
            except (DomainError, ValidationError) as exc:
                _add_error(form, exc)
                status_code = _status_of(exc)
            else:
                messages.success(
                    request, "The DPIA was saved." if dpia else "The DPIA was drafted."
                )
                return redirect("dpia-detail", pk=saved.pk)
        else:
            status_code = 400
    return render(
        request,
        "governance/dpia_form.html",
        {"programme": programme, "dpia": dpia, "form": form, "formset": formset},
        status=status_code,
    )


@login_required
@require_http_methods(["GET", "POST"])
def dpia_create(request: HttpRequest, slug: str) -> HttpResponse:
    programme = _programme_for_reader(request.user, slug)
    perms.require_may_draft_dpia(request.user, programme)

    def save(form: DPIAForm, risks: list[dict]) -> DPIA:
        return assurance_services.dpia_create(
            actor=request.user,
            programme=programme,
            data_flow_ids=[f.pk for f in form.cleaned_data["data_flows"]],
            risks=risks,
            **_dpia_data(form),
            **_document(form),
        )

    return _dpia_form_page(request, programme=programme, dpia=None, save=save)


@login_required
@require_http_methods(["GET", "POST"])
def dpia_edit(request: HttpRequest, pk: int) -> HttpResponse:
    dpia = perms.get_dpia_for_user(request.user, pk)
    perms.require_may_draft_dpia(request.user, dpia.programme)
    if dpia.status not in (DPIA.Status.DRAFT, DPIA.Status.UNDER_REVIEW):
        messages.error(
            request,
            f"This DPIA is {dpia.get_status_display().lower()}: only a draft or one under "
            "review can change. Start a review first.",
        )
        return redirect("dpia-detail", pk=dpia.pk)

    def save(form: DPIAForm, risks: list[dict]) -> DPIA:
        return assurance_services.dpia_update(
            actor=request.user,
            dpia=dpia,
            data=_dpia_data(form),
            risks=risks,
            data_flow_ids=[f.pk for f in form.cleaned_data["data_flows"]],
            **_document(form),
        )

    return _dpia_form_page(request, programme=dpia.programme, dpia=dpia, save=save)


@login_required
@require_http_methods(["GET", "POST"])
def dpia_dpo_advice(request: HttpRequest, pk: int) -> HttpResponse:
    """The DPO of a controller records their advice, and whether it was followed (Art 35(2))."""
    dpia = perms.get_dpia_for_user(request.user, pk)
    if not _may_advise(request.user, dpia):
        raise PermissionDenied(
            "Only the Data Protection Officer of a controller of this programme records "
            "advice on its DPIA."
        )
    initial = {}
    if dpia.dpo_advice:
        initial = {
            "advice": dpia.dpo_advice,
            "followed": "yes" if dpia.dpo_advice_followed else "no",
            "not_followed_reason": dpia.dpo_advice_not_followed_reason,
        }
    form = DPOAdviceForm(request.POST or None, initial=initial)
    status_code = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                assurance_services.dpia_record_dpo_advice(
                    actor=request.user,
                    dpia=dpia,
                    advice=data["advice"],
                    followed=data["followed"] == "yes",
                    not_followed_reason=data["not_followed_reason"],
                )
            except (DomainError, ValidationError) as exc:
                _add_error(form, exc)
                status_code = _status_of(exc)
            else:
                messages.success(request, "Your advice was recorded.")
                return redirect("dpia-detail", pk=dpia.pk)
        else:
            status_code = 400
    return render(
        request,
        "governance/dpia_dpo_advice.html",
        {"dpia": dpia, "programme": dpia.programme, "form": form},
        status=status_code,
    )


def _confirm_page(
    request: HttpRequest,
    *,
    template_context: dict,
    confirm: str,
    act: Callable[[], object],
    done: str,
    back: HttpResponse,
) -> HttpResponse:
    """Confirm and take one step (sign off, sign, start a review) with a required tick."""
    form = transition_form(
        text=None, confirm=confirm, data=request.POST if request.method == "POST" else None
    )
    status_code = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                act()
            except (DomainError, ValidationError) as exc:
                _add_error(form, exc)
                status_code = _status_of(exc)
            else:
                messages.success(request, done)
                return back
        else:
            status_code = 400
    return render(
        request,
        "governance/assurance_confirm.html",
        {**template_context, "form": form},
        status=status_code,
    )


def _organisation_of(user: User, ods_code: str, refusal: str) -> Organisation:
    """Return the organisation signed for; only a signatory signs (403).

    Whether they act for it, and whether it is a controller or party, the service answers
    (400 naming `organisation`), as the API does.
    """
    if not user.can("sign_assurance"):
        raise PermissionDenied(refusal)
    organisation = Organisation.objects.filter(ods_code=ods_code.upper()).first()
    if organisation is None:
        raise Http404("No such organisation.")
    return organisation


def _advice_words(dpia: DPIA) -> str:
    if not dpia.dpo_advice:
        return "Not recorded"
    if dpia.dpo_advice_followed:
        return "Followed"
    return f"Not followed: {dpia.dpo_advice_not_followed_reason}"


@login_required
@require_http_methods(["GET", "POST"])
def dpia_sign_off(request: HttpRequest, pk: int, ods_code: str) -> HttpResponse:
    """A controller's signatory signs the DPIA off for their organisation."""
    dpia = perms.get_dpia_for_user(request.user, pk)
    organisation = _organisation_of(
        request.user,
        ods_code,
        "Only a signatory (SIRO or Caldicott Guardian) of a controller signs the DPIA off for it.",
    )

    def act() -> None:
        assurance_services.dpia_sign_off(actor=request.user, dpia=dpia, organisation=organisation)

    return _confirm_page(
        request,
        template_context={
            "title": f"Sign off the DPIA for {organisation.display_name}",
            "caption": f"DPIA “{dpia.title}” v{dpia.version}, {dpia.programme.name}",
            "button": "Sign off the DPIA",
            "back_url": dpia_url(dpia),
            "back_label": f"Back to the DPIA “{dpia.title}”",
            "summary": [
                ("Status", dpia.get_status_display()),
                ("Residual risk", dpia.get_residual_risk_display()),
                ("Review date", dpia.review_date),
                ("DPO's advice", _advice_words(dpia)),
            ],
        },
        confirm=(
            f"I sign this DPIA off on behalf of {organisation.name}, having read it and the "
            "DPO's advice"
        ),
        act=act,
        done=f"You signed the DPIA off for {organisation.display_name}.",
        back=redirect("dpia-detail", pk=dpia.pk),
    )


@login_required
@require_http_methods(["GET", "POST"])
def dpia_start_review(request: HttpRequest, pk: int) -> HttpResponse:
    dpia = perms.get_dpia_for_user(request.user, pk)
    perms.require_may_draft_dpia(request.user, dpia.programme)

    def act() -> None:
        assurance_services.dpia_start_review(actor=request.user, dpia=dpia)

    return _confirm_page(
        request,
        template_context={
            "title": "Start a review of this DPIA",
            "caption": f"DPIA “{dpia.title}” v{dpia.version}, {dpia.programme.name}",
            "button": "Start the review",
            "back_url": dpia_url(dpia),
            "back_label": f"Back to the DPIA “{dpia.title}”",
            "summary": [("Review date", dpia.review_date)],
        },
        confirm=(
            "I understand the DPIA must be signed off again by every controller once reviewed"
        ),
        act=act,
        done="The review of the DPIA started: change it, then ask for the DPO's advice.",
        back=redirect("dpia-detail", pk=dpia.pk),
    )


@login_required
def dpia_document(request: HttpRequest, pk: int) -> HttpResponse:
    dpia = perms.get_dpia_for_user(request.user, pk)
    return document_response(dpia, f"dpia-{dpia.pk}")


def dpia_url(dpia: DPIA) -> str:
    return reverse("dpia-detail", args=[dpia.pk])


# --- data sharing agreements -----------------------------------------------------------------
@login_required
def agreement_list(request: HttpRequest, slug: str) -> HttpResponse:
    programme = _programme_for_reader(request.user, slug)
    return render(
        request,
        "governance/sharing_agreement_list.html",
        {
            "programme": programme,
            "agreements": programme.sharing_agreements.prefetch_related(
                "parties__organisation"
            ).order_by("title", "-pk"),
            "may_draft_agreement": programme.is_open and request.user.can("draft_assurance"),
        },
    )


@login_required
def agreement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    agreement = perms.get_sharing_agreement_for_user(request.user, pk)
    parties = [
        {
            "party": p,
            "may_sign": agreement.programme.is_open
            and not p.is_signed
            and _signatory_of(request.user, p.organisation),
        }
        for p in agreement.parties.select_related("organisation", "signatory")
    ]
    return render(
        request,
        "governance/sharing_agreement_detail.html",
        {
            "agreement": agreement,
            "programme": agreement.programme,
            "parties": parties,
            "flows": agreement.data_flows.select_related("source", "destination").order_by("pk"),
            "visible_flow_ids": _visible_flow_ids(request.user, agreement.programme),
            "legal_bases": agreement.legal_bases.all(),
            "may_edit": agreement.programme.is_open
            and not any(p["party"].is_signed for p in parties)
            and _may_draft_agreement(
                request.user, agreement.programme, [p["party"].organisation for p in parties]
            ),
        },
    )


def _agreement_form_page(
    request: HttpRequest,
    *,
    programme: Programme,
    agreement: SharingAgreement | None,
    save: Callable,
) -> HttpResponse:
    initial = {}
    if agreement is not None:
        initial = {
            f: getattr(agreement, f)
            for f in ("title", "reference", "version", "purpose")
            + ("start_date", "review_date", "expiry_date")
        }
        initial["parties"] = list(
            agreement.parties.values_list("organisation__ods_code", flat=True)
        )
        initial["legal_bases"] = list(agreement.legal_bases.values_list("code", flat=True))
        initial["data_flows"] = list(agreement.data_flows.values_list("pk", flat=True))
    post = request.method == "POST"
    form = SharingAgreementForm(
        request.POST if post else None,
        request.FILES if post else None,
        initial=initial,
        programme=programme,
    )
    status_code = 200
    if post:
        if form.is_valid():
            data = dict(form.cleaned_data)
            lists = {
                "party_ods_codes": [o.ods_code for o in data.pop("parties")],
                "legal_basis_codes": [b.code for b in data.pop("legal_bases")],
                "data_flow_ids": [f.pk for f in data.pop("data_flows")],
            }
            data.pop("document", None)
            try:
                saved = save(data, lists, _document(form))
            except (DomainError, ValidationError) as exc:
                _add_error(form, exc)
                status_code = _status_of(exc)
            else:
                messages.success(
                    request,
                    "The agreement was saved." if agreement else "The agreement was recorded.",
                )
                return redirect("sharing-agreement-detail", pk=saved.pk)
        else:
            status_code = 400
    return render(
        request,
        "governance/sharing_agreement_form.html",
        {"programme": programme, "agreement": agreement, "form": form},
        status=status_code,
    )


@login_required
@require_http_methods(["GET", "POST"])
def agreement_create(request: HttpRequest, slug: str) -> HttpResponse:
    programme = _programme_for_reader(request.user, slug)
    perms.require(request.user, "draft_assurance")

    def save(data: dict, lists: dict, document: dict) -> SharingAgreement:
        return assurance_services.sharing_agreement_create(
            actor=request.user, programme=programme, **data, **lists, **document
        )

    return _agreement_form_page(request, programme=programme, agreement=None, save=save)


@login_required
@require_http_methods(["GET", "POST"])
def agreement_edit(request: HttpRequest, pk: int) -> HttpResponse:
    agreement = perms.get_sharing_agreement_for_user(request.user, pk)
    perms.require_may_draft_agreement(
        request.user,
        agreement.programme,
        [p.organisation for p in agreement.parties.select_related("organisation")],
    )

    def save(data: dict, lists: dict, document: dict) -> SharingAgreement:
        return assurance_services.sharing_agreement_update(
            actor=request.user, agreement=agreement, data=data, **lists, **document
        )

    return _agreement_form_page(
        request, programme=agreement.programme, agreement=agreement, save=save
    )


@login_required
@require_http_methods(["GET", "POST"])
def agreement_sign(request: HttpRequest, pk: int, ods_code: str) -> HttpResponse:
    """A party's signatory signs the agreement for their organisation, today."""
    agreement = perms.get_sharing_agreement_for_user(request.user, pk)
    organisation = _organisation_of(
        request.user,
        ods_code,
        "Only a signatory (SIRO or Caldicott Guardian) of a party signs the agreement for it.",
    )

    def act() -> None:
        assurance_services.sharing_agreement_sign(
            actor=request.user, agreement=agreement, organisation=organisation
        )

    return _confirm_page(
        request,
        template_context={
            "title": f"Sign the agreement for {organisation.display_name}",
            "caption": f"Agreement “{agreement.title}” v{agreement.version}, "
            f"{agreement.programme.name}",
            "button": "Sign the agreement",
            "back_url": reverse("sharing-agreement-detail", args=[agreement.pk]),
            "back_label": f"Back to the agreement “{agreement.title}”",
            "summary": [
                ("Start date", agreement.start_date),
                ("Review date", agreement.review_date),
                ("Expiry date", agreement.expiry_date),
            ],
        },
        confirm=f"I sign this agreement on behalf of {organisation.name}, having read it",
        act=act,
        done=f"You signed the agreement for {organisation.display_name}.",
        back=redirect("sharing-agreement-detail", pk=agreement.pk),
    )


@login_required
def agreement_document(request: HttpRequest, pk: int) -> HttpResponse:
    agreement = perms.get_sharing_agreement_for_user(request.user, pk)
    return document_response(agreement, f"sharing-agreement-{agreement.pk}")
