"""The notices pages: the public side (no sign-in) and the DPO's drafting pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from notices import cache, pdf, selectors, services
from notices import permissions as perms
from notices.models import NoticeVersion
from notices.presentation import (
    HARD_SENTENCE_GRADE,
    area_label,
    diff_versions,
    notice_readability,
    rendered_sections,
    version_practices,
)
from phm_portal.errors import DomainError

SERVICE_NAME = "Privacy notices"


# --- public -------------------------------------------------------------------------
def _public(template: str, context: dict) -> bytes:
    """Render a public page without the request: nothing of the visitor may enter a cached page."""
    context = {"service_name": SERVICE_NAME, "demo_mode": settings.DEMO_MODE, **context}
    return render_to_string(template, context).encode("utf-8")


def _version_context(version: NoticeVersion) -> dict:
    programme = version.notice.programme
    previous = selectors.previous_public_version(version)
    # The practices the version speaks for: frozen with it, so the cached page stays true.
    practices = version_practices(version)
    return {
        "programme": programme,
        "area": area_label(programme.region, [p["name"] for p in practices]),
        "practices": practices,
        "destroyed": _destroyed(programme),
        "version": version,
        "sections": rendered_sections(version),
        "previous": previous,
        "versions": list(selectors.public_versions(programme.slug)),
    }


def _destroyed(programme) -> dict | None:
    """Return when the programme's data was destroyed (the notice page says so), or None."""
    if programme.status != programme.Status.DESTROYED:
        return None
    from destruction.views import programme_destroyed_note

    return programme_destroyed_note(programme)


def _state(programme) -> str:
    """Return the part of a page key that changes when the programme's data is destroyed."""
    return ":destroyed" if programme.status == programme.Status.DESTROYED else ""


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Find a practice by name, ODS code, postcode district or area; list its programmes."""
    query = request.GET.get("q", "").strip()[:100]
    results = None
    if query:
        results = [
            (practice, list(selectors.programmes_with_notice(practice)))
            for practice in selectors.practice_search(query)[:50]
        ]
    programmes = [p for p in selectors.programmes_with_notice() if p.has_notice]
    names = selectors.programme_practice_names(programmes)
    published = [(p, area_label(p.region, names[p.pk])) for p in programmes]
    body = _public(
        "notices/search.html", {"query": query, "results": results, "published": published}
    )
    return HttpResponse(body)


@require_GET
def current(request: HttpRequest, slug: str) -> HttpResponse:
    """The programme's current notice, cached until the next publication or withdrawal."""

    def from_db() -> tuple[int, str] | None:
        version = selectors.current_version(slug)
        if version is None:
            return None
        # The pointer's hash part keys the page: it changes when the data is destroyed.
        return version.number, version.sha256 + _state(version.notice.programme)

    pointer = cache.current_pointer(slug, from_db)
    if pointer is None:
        raise Http404("No published notice.")
    number, sha = pointer

    def build() -> bytes:
        version = selectors.public_version(slug, number)
        if version is None:  # withdrawn between the two reads: the pointer is being dropped
            raise Http404("No published notice.")
        return _public("notices/notice.html", {**_version_context(version), "is_current": True})

    return HttpResponse(cache.page(f"notices:page:{slug}:v{number}:{sha}", build))


def _public_version_or_404(slug: str, number: int) -> NoticeVersion:
    version = selectors.public_version(slug, number)
    if version is None:
        raise Http404("No such version.")
    return version


def _version_key(kind: str, version: NoticeVersion) -> str:
    return (
        f"notices:{kind}:{version.notice.programme.slug}:v{version.number}:"
        f"{version.sha256}:{version.status}{_state(version.notice.programme)}"
    )


@require_GET
def version_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    version = _public_version_or_404(slug, number)
    current_version = selectors.current_version(slug)
    body = cache.page(
        _version_key("version", version) + f":{current_version.number if current_version else 0}",
        lambda: _public(
            "notices/notice.html",
            {
                **_version_context(version),
                "is_current": current_version is not None and current_version.pk == version.pk,
            },
        ),
    )
    return HttpResponse(body)


@require_GET
def changes_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """What changed in this version from the one before, word by word."""
    version = _public_version_or_404(slug, number)
    previous = selectors.previous_public_version(version)
    if previous is None:
        raise Http404("The first version has nothing to compare with.")

    def build() -> bytes:
        diffs, unchanged = diff_versions(previous, version)
        return _public(
            "notices/changes.html",
            {
                "programme": version.notice.programme,
                "version": version,
                "previous": previous,
                "diffs": diffs,
                "unchanged": unchanged,
            },
        )

    return HttpResponse(cache.page(_version_key("changes", version), build))


@require_GET
def version_pdf(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    version = _public_version_or_404(slug, number)
    data = cache.page(_version_key("pdf", version), lambda: pdf.render_pdf(version))
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="privacy-notice-{slug}-v{version.number}.pdf"'
    )
    return response


# --- the DPO's pages ------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def programme_notices(request: HttpRequest, slug: str) -> HttpResponse:
    """The versions of a programme's notice; a DPO of a controller generates a draft here."""
    from governance.models import Programme

    programme = Programme.objects.filter(slug=slug).first()
    if programme is None:
        raise Http404("No such programme.")
    if request.method == "POST":
        perms.require_editor(request.user, programme)
        version, created = services.notice_draft_generate(actor=request.user, programme=programme)
        messages.success(
            request,
            f"Draft version {version.number} was generated from the programme's data."
            if created
            else f"Draft version {version.number} was generated again; your local wording was kept.",
        )
        return redirect("notice-manage", pk=version.pk)
    versions = NoticeVersion.objects.filter(notice__programme=programme).select_related(
        "published_by"
    )
    if not perms.can_read_drafts(request.user, programme):
        versions = versions.exclude(status=NoticeVersion.Status.DRAFT)
    return render(
        request,
        "notices/manage_list.html",
        {
            "programme": programme,
            "versions": versions.order_by("-number"),
            "can_edit": perms.can_edit(request.user, programme),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest, pk: int) -> HttpResponse:
    """Preview a version with its readability and completeness; edit a draft's local wording."""
    version = perms.get_version_for_user(request.user, pk, edit=request.method == "POST")
    programme = version.notice.programme
    errors = []
    if request.method == "POST":
        texts = {
            s["key"]: request.POST.get(f"local_{s['key']}", "")
            for s in version.sections
            if f"local_{s['key']}" in request.POST
        }
        try:
            services.notice_version_update(actor=request.user, version=version, local_texts=texts)
        except DomainError as exc:
            errors.append(exc.message)
        else:
            messages.success(request, "Your local wording was saved. Check the preview below.")
            return redirect("notice-manage", pk=version.pk)
    missing = services.notice_version_missing(version)
    # A draft says what it changes since the last version patients could read (the words
    # their "what changed" page will compare), and whether it changes anything at all.
    since, diffs, unchanged, nothing_new, drop = None, [], 0, False, None
    if version.status == NoticeVersion.Status.DRAFT:
        since = selectors.previous_public_version(version)
        if since is not None:
            diffs, unchanged = diff_versions(since, version)
        nothing_new = services.notice_version_says_nothing_new(version)
        drop = services.notice_version_readability_drop(version)
    found = notice_readability(version.sections)
    return render(
        request,
        "notices/manage.html",
        {
            "programme": programme,
            "version": version,
            # The preview marks the hardest sentences where they stand.
            "sections": rendered_sections(version, marked=found.marked()),
            "raw_sections": version.sections,
            "readability": found,
            "harder": drop,
            "hard_grade": HARD_SENTENCE_GRADE,
            "missing": missing,
            "errors": errors,
            "since": since,
            "diffs": diffs,
            "unchanged": unchanged,
            "nothing_new": nothing_new,
            "nothing_to_publish": services.NOTHING_TO_PUBLISH,
            "can_edit": perms.can_edit(request.user, programme),
            "public_url": reverse("notice-version", args=[programme.slug, version.number])
            if version.is_public
            else None,
        },
        status=400 if errors else 200,
    )


HARDER_NOT_CONFIRMED = (
    "Tick the box to publish a version that is harder to read, or make the draft plainer first"
)


@login_required
@require_http_methods(["GET", "POST"])
def publish(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then publish a draft (refused with the missing items if incomplete).

    A draft harder to read than the version it replaces is published only with the box
    ticked that says the DPO read the warning.
    """
    version = perms.get_version_for_user(request.user, pk, edit=True)
    missing = services.notice_version_missing(version)
    drop = (
        services.notice_version_readability_drop(version)
        if version.status == NoticeVersion.Status.DRAFT
        else None
    )
    error, confirm_error = None, None
    confirmed = request.POST.get("confirm_harder_to_read") == "yes"
    if request.method == "POST":
        try:
            services.notice_version_publish(
                actor=request.user, version=version, harder_to_read_confirmed=confirmed
            )
        except services.NoticeIncomplete as exc:
            error, missing = exc.message, exc.details
        except services.NoticeHarderToRead as exc:
            drop, confirm_error = exc.details, HARDER_NOT_CONFIRMED
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, f"Version {version.number} is published.")
            return redirect("notice-manage", pk=version.pk)
    return render(
        request,
        "notices/publish.html",
        {
            "version": version,
            "programme": version.notice.programme,
            "missing": missing,
            "error": error,
            "harder": drop,
            "harder_message": services.harder_to_read_message(drop) if drop else "",
            "confirm_error": confirm_error,
            "confirmed": confirmed,
        },
        status=409 if (error or confirm_error) else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, with a reason, then withdraw a published version."""
    version = perms.get_version_for_user(request.user, pk, edit=True)
    error = None
    reason = request.POST.get("reason", "")
    if request.method == "POST":
        try:
            services.notice_version_withdraw(actor=request.user, version=version, reason=reason)
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, f"Version {version.number} is withdrawn.")
            return redirect("notice-manage", pk=version.pk)
    return render(
        request,
        "notices/withdraw.html",
        {
            "version": version,
            "programme": version.notice.programme,
            "error": error,
            "reason": reason,
        },
        status=(409 if error.status_code == 409 else 400) if error else 200,
    )
