"""The data flow pages: the queue and filters, a flow with its history, each workflow step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance import assurance, selectors, services
from governance import permissions as perms
from governance.forms import DataFlowForm, transition_form
from governance.models import DataFlow, Organisation
from governance.services.data_flows import PAST_TENSE
from governance.views.assurance import flow_assurance
from phm_portal.errors import DomainError
from phm_portal.forms import add_service_error

ALL_STATUSES = "all"
CHECKLIST_CAPTIONS = {
    DataFlow.Status.DRAFT: "What approving this flow needs: every condition must hold",
    DataFlow.Status.APPROVED: "What this flow stands on: data moves only while every condition "
    "holds",
    DataFlow.Status.SUSPENDED: "What reinstating this flow needs: every condition must hold",
}
# The steps that need every assurance condition to hold: their page shows the checklist.
ASSURED_STEPS = ("approve", "request_reinstatement", "reinstate")
# Asking for reinstatement is no transition of its own: it is asked of a suspended flow.
STEP_SOURCES = {"request_reinstatement": (DataFlow.Status.SUSPENDED,)}
DONE = {"request_reinstatement": "Reinstatement was asked for: another CSU admin decides it now."}


@dataclass(frozen=True)
class Step:
    """One workflow step as a page: what it says, and what the person must confirm."""

    title: str
    button: str
    text: tuple[str, str, str | None] | None
    confirm: str
    warning: bool = False


STEPS: dict[str, Step] = {
    "submit": Step(
        "Submit this data flow for a decision",
        "Submit for decision",
        None,
        "I have checked these details and the DPIA and data sharing agreement references",
    ),
    "approve": Step(
        "Approve this data flow",
        "Approve data flow",
        ("comment", "Comment (optional)", None),
        "I have checked the DPIA and the data sharing agreement",
    ),
    "reject": Step(
        "Reject this data flow",
        "Reject data flow",
        ("reason", "Why is it rejected?", "Say why the flow is rejected."),
        "I understand a rejected flow cannot be approved later: a new one must be proposed",
        warning=True,
    ),
    "suspend": Step(
        "Suspend this data flow",
        "Suspend data flow",
        ("reason", "Why is it suspended? (optional)", None),
        "I understand no data may move on this flow while it is suspended",
        warning=True,
    ),
    "request_reinstatement": Step(
        "Ask for this data flow to be reinstated",
        "Ask for reinstatement",
        ("comment", "Comment (optional)", None),
        "I have checked that the reason for the suspension is resolved and every condition "
        "holds again",
    ),
    "reinstate": Step(
        "Reinstate this data flow",
        "Reinstate data flow",
        ("comment", "Comment (optional)", None),
        "I have checked that the reason for the suspension is resolved",
    ),
    "close": Step(
        "Close this data flow",
        "Close data flow",
        ("comment", "Comment (optional)", None),
        "I understand a closed flow cannot be reopened",
        warning=True,
    ),
}
SERVICES = {
    "submit": services.data_flow_submit,
    "approve": services.data_flow_approve,
    "reject": services.data_flow_reject,
    "suspend": services.data_flow_suspend,
    "request_reinstatement": services.data_flow_request_reinstatement,
    "reinstate": services.data_flow_reinstate,
    "close": services.data_flow_close,
}
ACTION_LABELS = {
    "edit": "Change this draft",
    "submit": "Submit for decision",
    "approve": "Approve this flow",
    "reject": "Reject this flow",
    "suspend": "Suspend this flow",
    "request_reinstatement": "Ask for reinstatement",
    "reinstate": "Reinstate this flow",
    "close": "Close this flow",
}


@login_required
def data_flow_list(request: HttpRequest) -> HttpResponse:
    """The flows the person may see; for a CSU admin, by default the queue awaiting decision."""
    user = request.user
    if "status" in request.GET:
        status = request.GET["status"]
    else:
        status = DataFlow.Status.SUBMITTED if user.can("approve_data_flows") else ALL_STATUSES
    if status not in DataFlow.Status.values:
        status = ALL_STATUSES
    programme = request.GET.get("programme", "")
    organisation = request.GET.get("organisation", "").strip().upper()
    qs = selectors.data_flow_list(
        user,
        programme=programme,
        status="" if status == ALL_STATUSES else status,
        organisation=organisation,
    )
    # A CSU admin's queue is split by the four-eyes rule: what they may decide, and what
    # they submitted themselves and another admin must decide.
    is_queue = status == DataFlow.Status.SUBMITTED
    split = is_queue and user.can("approve_data_flows")
    own_submissions = qs.filter(perms.own_submissions(user)) if split else None
    if split:
        qs = qs.exclude(perms.own_submissions(user))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    visible = perms.data_flows_visible_to(user)
    organisations = Organisation.objects.filter(
        pk__in=visible.values("source")
    ) | Organisation.objects.filter(pk__in=visible.values("destination"))
    filters = {"status": status, "programme": programme, "organisation": organisation}
    return render(
        request,
        "governance/data_flow_list.html",
        {
            "page": page,
            "is_queue": is_queue,
            "split": split,
            "own_submissions": own_submissions,
            "filters": filters,
            "querystring_base": urlencode(filters) + "&",
            "statuses": DataFlow.Status.choices,
            "programmes": perms.programmes_of(user).order_by("name"),
            "organisations": organisations.distinct().order_by("name"),
            "may_propose": user.can("create_data_flows"),
        },
    )


def _history(flow: DataFlow) -> list[dict]:
    events = []
    for event in selectors.data_flow_history(flow):
        verb = event.action.split(".", 1)[-1]
        details = event.details or {}
        events.append(
            {
                "at": event.at,
                "actor": event.actor,
                "what": verb.replace("_", " ").capitalize(),
                "note": details.get("reason") or details.get("comment") or "",
                "changed": ", ".join(sorted(details.get("changed", {}))),
            }
        )
    return events


@login_required
def data_flow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A flow, its history, and what the person may do with it now (parties read only)."""
    flow = perms.get_data_flow_for_user(request.user, pk)
    actions = perms.data_flow_actions_for(request.user, flow)
    return render(
        request,
        "governance/data_flow_detail.html",
        {
            "flow": flow,
            "conditions": flow_assurance(flow),
            "assurance_caption": CHECKLIST_CAPTIONS.get(flow.status, CHECKLIST_CAPTIONS["draft"]),
            "history": _history(flow),
            "actions": [
                (a, ACTION_LABELS[a], STEPS[a].warning if a in STEPS else False) for a in actions
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def data_flow_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Confirm and take one workflow step: approve, reject, submit, suspend, reinstate, close."""
    if action not in STEPS:
        raise Http404("No such step.")
    flow = perms.get_data_flow_for_user(request.user, pk)
    perms.require_data_flow_action(request.user, flow, action)
    step = STEPS[action]
    form = transition_form(
        text=step.text,
        confirm=step.confirm,
        data=request.POST if request.method == "POST" else None,
    )
    status_code = 200
    sources = STEP_SOURCES.get(action) or DataFlow.TRANSITIONS[action][0]
    not_now = None
    if flow.status not in sources:
        not_now = (
            f"This flow is {flow.get_status_display().lower()}: it cannot be "
            f"{PAST_TENSE.get(action, 'reinstated')} now."
        )
        status_code = 409
    elif action == "reinstate" and flow.reinstatement_requested_by_id is None:
        not_now = (
            "Reinstatement of this flow has not been asked for yet: a CSU admin asks for it "
            "once every condition holds again, and another reinstates it."
        )
        status_code = 409
    elif action == "request_reinstatement" and flow.reinstatement_requested_by_id is not None:
        not_now = "Reinstatement of this flow was already asked for: another CSU admin decides it."
        status_code = 409
    elif request.method == "POST" and form.is_valid():
        kwargs = {step.text[0]: form.cleaned_data[step.text[0]]} if step.text else {}
        try:
            SERVICES[action](actor=request.user, flow=flow, **kwargs)
        except (DomainError, ValidationError) as exc:
            add_service_error(form, exc)
            status_code = getattr(exc, "status_code", 400)
        else:
            done = DONE[action] if action in DONE else f"The data flow was {PAST_TENSE[action]}."
            messages.success(request, done)
            return redirect("data-flow-detail", pk=flow.pk)
    conditions = assurance.flow_conditions(flow) if action in ASSURED_STEPS else None
    return render(
        request,
        "governance/data_flow_transition.html",
        {
            "flow": flow,
            "step": step,
            "action": action,
            "form": form,
            "not_now": not_now,
            "conditions": conditions,
            "failing": assurance.failing(conditions) if conditions else [],
        },
        status=status_code,
    )


def _form_data(flow: DataFlow) -> dict:
    return {
        "programme": flow.programme.slug,
        "source": flow.source.ods_code,
        "destination": flow.destination.ods_code,
        "data_categories": flow.data_categories,
        "identifiability": flow.identifiability,
        "legal_bases": [b.code for b in flow.legal_bases.all()],
        "purpose": flow.purpose,
        "dpia_reference": flow.dpia_reference,
        "dsa_reference": flow.dsa_reference,
    }


@login_required
@require_http_methods(["GET", "POST"])
def data_flow_create(request: HttpRequest) -> HttpResponse:
    """Draft a data flow: a CSU admin, or a DPO from their own organisation."""
    perms.require(request.user, "create_data_flows")
    form = DataFlowForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flow = services.data_flow_create(
                actor=request.user,
                programme=data["programme"],
                source=data["source"],
                destination=data["destination"],
                data_categories=data["data_categories"],
                identifiability=data["identifiability"],
                legal_basis_codes=[b.code for b in data["legal_bases"]],
                purpose=data["purpose"],
                dpia_reference=data["dpia_reference"],
                dsa_reference=data["dsa_reference"],
            )
        except (DomainError, ValidationError) as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "The data flow was drafted. Submit it when it is ready.")
            return redirect("data-flow-detail", pk=flow.pk)
    return render(request, "governance/data_flow_form.html", {"form": form, "flow": None})


@login_required
@require_http_methods(["GET", "POST"])
def data_flow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft flow."""
    flow = perms.get_data_flow_for_user(request.user, pk)
    perms.require_data_flow_action(request.user, flow, "edit")
    form = DataFlowForm(request.POST or None, initial=_form_data(flow), user=request.user)
    status_code = 200
    if flow.status != DataFlow.Status.DRAFT:
        messages.error(request, "Only a draft flow can change.")
        return redirect("data-flow-detail", pk=flow.pk)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        bases = [b.code for b in data.pop("legal_bases")]
        try:
            services.data_flow_update(
                actor=request.user, flow=flow, data=data, legal_basis_codes=bases
            )
        except (DomainError, ValidationError) as exc:
            add_service_error(form, exc)
            status_code = getattr(exc, "status_code", 400)
        else:
            messages.success(request, "The draft was changed.")
            return redirect("data-flow-detail", pk=flow.pk)
    return render(
        request, "governance/data_flow_form.html", {"form": form, "flow": flow}, status=status_code
    )


@login_required
def record_of_processing_download(request: HttpRequest, ods_code: str, fmt: str) -> HttpResponse:
    """Download the organisation's record of processing (UK GDPR Art 30) as CSV or JSON."""
    organisation = perms.get_organisation_for_record_of_processing(request.user, ods_code)
    record = selectors.record_of_processing(organisation)
    if fmt == "csv":
        response = HttpResponse(
            selectors.record_of_processing_csv(record), content_type="text/csv; charset=utf-8"
        )
    else:
        response = HttpResponse(
            json.dumps(record, indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
    response["Content-Disposition"] = (
        f'attachment; filename="record-of-processing-{organisation.ods_code}.{fmt}"'
    )
    return response
