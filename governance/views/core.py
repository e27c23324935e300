"""The governance pages: home per role, organisations, programmes, people."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance import permissions as perms
from governance import selectors, services
from governance.flowmap import build_flow_map
from governance.forms import UserCreateForm
from governance.models import Organisation, Participation, Programme, User
from governance.views.assurance import assurance_awaiting, may_read_programme_assurance
from phm_portal.errors import DomainError
from phm_portal.forms import add_service_error


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    organisations = perms.organisations_of(user).order_by("name")
    programmes = perms.programmes_of(user).order_by("name")
    awaiting_you, awaiting_another = perms.data_flow_queue(user)
    return render(
        request,
        "governance/home.html",
        {
            "organisations": organisations,
            "programmes": programmes,
            "capabilities": [(c, perms.CAPABILITY_LABELS[c]) for c in perms.capabilities_of(user)],
            "flows_awaiting_you": awaiting_you.count(),
            "flows_awaiting_another": awaiting_another.count(),
            "assurance_awaiting": assurance_awaiting(user),
        },
    )


@login_required
def organisation_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    kind = request.GET.get("kind", "")
    qs = selectors.organisation_search(query)
    if kind in Organisation.Kind.values:
        qs = qs.filter(kind=kind)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/organisation_list.html",
        {"page": page, "query": query, "kind": kind, "kinds": Organisation.Kind.choices},
    )


@login_required
def organisation_detail(request: HttpRequest, ods_code: str) -> HttpResponse:
    organisation = Organisation.objects.filter(ods_code=ods_code.upper()).first()
    if organisation is None:
        raise Http404("No such organisation.")
    participations = organisation.participations.select_related("programme").order_by(
        "programme__name"
    )
    members = None
    if request.user.can("manage_users"):
        members = User.objects.filter(
            userobjectpermission__object_pk=str(organisation.pk),
            userobjectpermission__permission__codename="act_for_organisation",
        ).order_by("username")
    is_controller = any(p.role in Participation.CONTROLLER_ROLES for p in participations)
    return render(
        request,
        "governance/organisation_detail.html",
        {
            "organisation": organisation,
            "participations": participations,
            "members": members,
            "is_controller": is_controller,
            "may_read_record": perms.may_read_record_of_processing(request.user, organisation),
            "flow_count": perms.data_flows_visible_to(request.user)
            .filter(Q(source=organisation) | Q(destination=organisation))
            .count(),
            "certificates": _certificates(request.user, organisation),
            "may_edit_assurance": request.user.can("manage_organisations"),
            "assurance_facts": _assurance_facts(organisation),
        },
    )


def _assurance_facts(organisation: Organisation) -> dict:
    """Whether the organisation's ICO registration has expired and its DSPT year has lapsed."""
    from django.utils import timezone

    from governance.assurance import dspt_year_current_until

    today = timezone.localdate()
    expires = organisation.ico_registration_expires_on
    until = dspt_year_current_until(organisation.dspt_year)
    return {
        "ico_expired": expires is not None and today > expires,
        "dspt_until": until,
        "dspt_lapsed": until is not None and today > until,
    }


def _certificates(user: User, organisation: Organisation):
    """The destruction certificates its people (and CSU admins) read on the organisation's page."""
    from destruction.selectors import certificates_of_organisation

    if user.can("run_destruction") or perms.is_member(user, organisation):
        return list(certificates_of_organisation(organisation))
    return []


def _destruction(user: User, programme: Programme) -> dict:
    from destruction import permissions as destruction_perms
    from destruction.views import programme_destroyed_note

    follows = destruction_perms.may_follow_runs(user, programme)
    note = programme_destroyed_note(programme)
    certificate = None
    if note and note["serial"] and destruction_perms.may_read_certificates(user, programme):
        certificate = {"serial": note["serial"]}
    return {
        "destroyed": note,
        "certificate": certificate,
        "may_run": user.can("run_destruction"),
        "runs": list(programme.destruction_runs.order_by("-requested_at")) if follows else [],
    }


@login_required
def programme_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    qs = Programme.objects.order_by("name")
    if status in Programme.Status.values:
        qs = qs.filter(status=status)
    mine = set(perms.programmes_of(request.user).values_list("pk", flat=True))
    return render(
        request,
        "governance/programme_list.html",
        {"programmes": qs, "mine": mine, "status": status, "statuses": Programme.Status.choices},
    )


@login_required
def programme_detail(request: HttpRequest, slug: str) -> HttpResponse:
    programme = selectors.programme_with_participants(slug)
    if programme is None:
        raise Http404("No such programme.")
    flows = selectors.programme_flows_for_map(programme, request.user)
    flow_map = build_flow_map(
        flows,
        programme.participations.all(),
        title=f"Data flows of {programme.name}",
        ident=f"flowmap-{programme.slug}",
    )
    mine = set(
        perms.data_flows_visible_to(request.user)
        .filter(programme=programme)
        .values_list("pk", flat=True)
    )
    return render(
        request,
        "governance/programme_detail.html",
        {
            "programme": programme,
            "by_role": selectors.participants_by_role(programme),
            "flows": flows,
            "flow_map": flow_map,
            "visible_flow_ids": mine,
            "destruction": _destruction(request.user, programme),
            "may_read_assurance": may_read_programme_assurance(request.user, programme),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    perms.require(request.user, "manage_users")
    form = UserCreateForm(request.POST or None)
    new_link = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                actor=request.user,
                username=data["username"],
                email=data["email"],
                role=data["role"],
                organisations=data["organisations"],
                first_name=data["first_name"],
                last_name=data["last_name"],
            )
        except (DomainError, ValidationError) as exc:
            add_service_error(form, exc)
        else:
            new_link = request.build_absolute_uri(services.set_password_path(user))
            messages.success(
                request, f"{user.username} was added. Give them the set-password link below, once."
            )
            form = UserCreateForm()
    users = Paginator(User.objects.order_by("username"), 50).get_page(request.GET.get("page"))
    return render(
        request, "governance/user_list.html", {"form": form, "users": users, "new_link": new_link}
    )


def health(request: HttpRequest) -> HttpResponse:
    """Answer 200 when the database answers, 503 otherwise (for load balancers)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"database": "unreachable"}, status=503)
    return JsonResponse({"database": "ok"})


def redirect_home(request: HttpRequest) -> HttpResponse:
    return redirect("home")
