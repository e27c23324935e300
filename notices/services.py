"""Every write of the notices app: generate a draft, edit its local wording, publish, withdraw.

Permissions are the callers' business (notices.permissions); these functions hold
the rules that apply whoever calls them. Published versions never change: the
transitions claim the row with a conditional update, and a database trigger
refuses any other change to a published row (migration 0002).
"""

from __future__ import annotations

import hashlib
import json

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from governance.models import Programme, User
from notices import cache, generator, readability, selectors
from notices.completeness import missing_items
from notices.models import Notice, NoticeVersion
from notices.presentation import diff_versions, notice_readability
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow

LOCAL_TEXT_MAX = 5000


class NoticeIncomplete(NotAllowedNow):
    """The notice does not yet say everything Articles 13 and 14 require (409, with the list)."""


class NoticeHarderToRead(NotAllowedNow):
    """The draft reads harder than the version it replaces (409 until the DPO confirms)."""


NOTHING_TO_PUBLISH = (
    "This draft says nothing the published notice does not: there is nothing to publish. "
    "Change the programme's governance data or the local wording first."
)


def content_sha256(*, slug: str, number: int, sections: list[dict]) -> str:
    """Return the SHA-256 of the version's content: what a patient reads, and nothing else."""
    body = json.dumps(
        {
            "programme": slug,
            "version": number,
            "sections": [
                {k: s.get(k, "") for k in ("key", "title", "generated_text", "local_text")}
                for s in sections
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _last_published(notice: Notice) -> NoticeVersion | None:
    return (
        notice.versions.filter(
            status__in=[NoticeVersion.Status.PUBLISHED, NoticeVersion.Status.WITHDRAWN]
        )
        .order_by("-number")
        .first()
    )


def notice_draft_generate(
    *, actor: User | None, programme: Programme
) -> tuple[NoticeVersion, bool]:
    """Generate a draft from the programme's governance data; return it and whether it is new.

    1. The notice of the programme is made on first use.
    2. If a draft is open it is regenerated in place, keeping the DPO's local wording
       for each section that is still there; otherwise a new version number is taken.
    3. The draft says what changed since the last published version.
    """
    with transaction.atomic():
        notice, _ = Notice.objects.get_or_create(programme=programme)
        # Serialise drafts of one notice (a second click waits, then refreshes).
        Notice.objects.select_for_update().filter(pk=notice.pk).first()
        facts = generator.programme_facts(programme)
        previous = _last_published(notice)
        changes = generator.changes_between(previous.facts, facts) if previous else []
        sections = generator.sections(
            facts, changes=changes, since=previous.number if previous else None
        )
        draft = notice.versions.filter(status=NoticeVersion.Status.DRAFT).first()
        if draft is not None:
            local = {s["key"]: s.get("local_text", "") for s in draft.sections}
            for s in sections:
                s["local_text"] = local.get(s["key"], "")
            draft.sections = sections
            draft.facts = facts
            draft.changes = changes
            draft.sha256 = content_sha256(
                slug=programme.slug, number=draft.number, sections=sections
            )
            draft.full_clean()
            draft.save(update_fields=["sections", "facts", "changes", "sha256", "updated_at"])
            audit_log(
                actor=actor,
                action="notice.draft_regenerated",
                obj=draft,
                details={"programme": programme.slug, "version": draft.number, "changes": changes},
            )
            return draft, False
        number = (notice.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        draft = NoticeVersion(
            notice=notice,
            number=number,
            sections=sections,
            facts=facts,
            changes=changes,
            sha256=content_sha256(slug=programme.slug, number=number, sections=sections),
            created_by=actor if isinstance(actor, User) else None,
        )
        draft.full_clean()
        draft.save()
        audit_log(
            actor=actor,
            action="notice.draft_created",
            obj=draft,
            details={"programme": programme.slug, "version": number, "changes": changes},
        )
        return draft, True


def notice_version_update(
    *, actor: User | None, version: NoticeVersion, local_texts: dict[str, str]
) -> NoticeVersion:
    """Set the local wording of some sections of a draft; published versions refuse."""
    if not isinstance(local_texts, dict) or not local_texts:
        raise InvalidInput("Give the local wording of at least one section.", field="sections")
    known = {s["key"] for s in version.sections}
    for key, text in local_texts.items():
        if key not in known:
            raise InvalidInput(
                f"There is no section “{key}”. Sections: {', '.join(sorted(known))}.",
                field="sections",
            )
        if not isinstance(text, str):
            raise InvalidInput(f"The local wording of “{key}” must be text.", field="sections")
        if len(text) > LOCAL_TEXT_MAX:
            raise InvalidInput(
                f"The local wording of “{key}” is longer than {LOCAL_TEXT_MAX} characters.",
                field="sections",
            )
    with transaction.atomic():
        current = NoticeVersion.objects.select_for_update().get(pk=version.pk)
        if current.status != NoticeVersion.Status.DRAFT:
            raise NotAllowedNow(
                f"Version {current.number} is {current.get_status_display().lower()}: "
                "a published version never changes. Generate a new draft instead."
            )
        sections = [dict(s) for s in current.sections]
        changed = []
        for s in sections:
            if s["key"] in local_texts:
                new = local_texts[s["key"]].replace("\r\n", "\n").strip()
                if new != s.get("local_text", ""):
                    s["local_text"] = new
                    changed.append(s["key"])
        if not changed:
            return current
        sha = content_sha256(
            slug=current.notice.programme.slug, number=current.number, sections=sections
        )
        claimed = NoticeVersion.objects.filter(
            pk=current.pk, status=NoticeVersion.Status.DRAFT
        ).update(sections=sections, sha256=sha, updated_at=timezone.now())
        if claimed != 1:  # pragma: no cover - the row lock above makes this unreachable
            raise NotAllowedNow("The draft changed state while it was being edited.")
        audit_log(
            actor=actor,
            action="notice.local_wording_changed",
            obj=current,
            details={"sections": changed, "sha256": sha},
        )
    current.refresh_from_db()
    return current


def notice_version_missing(version: NoticeVersion) -> list[dict]:
    """Return what Articles 13 and 14 require that the version does not say."""
    return missing_items(facts=version.facts, sections=version.sections)


def notice_version_says_nothing_new(version: NoticeVersion) -> bool:
    """Return whether the version's words are those of the notice patients read now."""
    published = selectors.current_version(version.notice.programme.slug)
    return (
        published is not None
        and published.pk != version.pk
        and not diff_versions(published, version)[0]
    )


def notice_version_readability_drop(version: NoticeVersion) -> dict | None:
    """Return how much harder the version reads than the one patients read now, or None.

    Both are scored on what a patient reads first (the verbatim law left out). Harder is
    a lower reading ease or a higher grade; None when nothing is published yet, or when
    the version reads at least as plainly.
    """
    published = selectors.current_version(version.notice.programme.slug)
    if published is None or published.pk == version.pk:
        return None
    before = notice_readability(published.sections).score
    after = notice_readability(version.sections).score
    if not readability.is_harder(after, before):
        return None
    return {"replaces": published.number, "before": before.as_dict(), "after": after.as_dict()}


def harder_to_read_message(drop: dict) -> str:
    """Return the warning a DPO reads before publishing a version harder to read."""
    before, after = drop["before"], drop["after"]
    return (
        f"This draft is harder to read than version {drop['replaces']}, which patients read "
        f"now: reading ease {after['flesch_reading_ease']} (was "
        f"{before['flesch_reading_ease']}; higher is easier), grade "
        f"{after['flesch_kincaid_grade']} (was {before['flesch_kincaid_grade']}; lower is "
        "easier). Make it plainer, or confirm that you want to publish it as it is."
    )


def notice_version_publish(
    *, actor: User, version: NoticeVersion, harder_to_read_confirmed: bool = False
) -> NoticeVersion:
    """Publish a complete, up-to-date draft; from now on it never changes.

    1. Refuse a version that is not a draft (409).
    2. Refuse a draft generated from governance data that has changed since (409):
       what is published must say what the data says now.
    3. Refuse an incomplete draft (409 with the missing items).
    4. Refuse a draft whose words are those of the published version (409): patients
       would get a "what changed" page saying nothing changed.
    5. Refuse a draft harder to read than the version it replaces (409 with both
       figures) unless the DPO confirmed they want it published anyway.
    6. Claim draft -> published, audit (with the figures when it reads harder), and drop
       the cached public page on commit.
    """
    programme = version.notice.programme
    if version.status != NoticeVersion.Status.DRAFT:
        raise NotAllowedNow(
            f"Version {version.number} is already {version.get_status_display().lower()}."
        )
    if generator.programme_facts(programme) != version.facts:
        raise NotAllowedNow(
            "The programme's governance data has changed since this draft was generated. "
            "Generate the draft again, check it, then publish."
        )
    missing = notice_version_missing(version)
    if missing:
        raise NoticeIncomplete(
            "The notice is incomplete: it does not yet say everything UK GDPR Articles 13 and "
            "14 require. Record the missing facts in the programme, then generate the draft again.",
            details=missing,
        )
    if notice_version_says_nothing_new(version):
        raise NotAllowedNow(NOTHING_TO_PUBLISH)
    drop = notice_version_readability_drop(version)
    if drop is not None and not harder_to_read_confirmed:
        raise NoticeHarderToRead(harder_to_read_message(drop), details=drop)
    now = timezone.now()
    with transaction.atomic():
        claimed = NoticeVersion.objects.filter(
            pk=version.pk, status=NoticeVersion.Status.DRAFT, sha256=version.sha256
        ).update(
            status=NoticeVersion.Status.PUBLISHED,
            published_at=now,
            published_by=actor,
            updated_at=now,
        )
        if claimed != 1:
            raise NotAllowedNow(
                "The draft changed while you were publishing it (published already, or "
                "edited since you checked it). Check it again."
            )
        version.refresh_from_db()
        details = {"programme": programme.slug, "version": version.number, "sha256": version.sha256}
        if drop is not None:  # published knowing it reads harder: the figures are on record
            details["harder_to_read"] = drop
        audit_log(actor=actor, action="notice.published", obj=version, details=details)
        transaction.on_commit(lambda: cache.forget(programme.slug))
    return version


def notice_version_withdraw(*, actor: User, version: NoticeVersion, reason: str) -> NoticeVersion:
    """Withdraw a published version (it stays readable, marked withdrawn); audit it."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the version is withdrawn.", field="reason")
    programme = version.notice.programme
    now = timezone.now()
    with transaction.atomic():
        claimed = NoticeVersion.objects.filter(
            pk=version.pk, status=NoticeVersion.Status.PUBLISHED
        ).update(
            status=NoticeVersion.Status.WITHDRAWN,
            withdrawn_at=now,
            withdrawn_by=actor,
            withdrawn_reason=reason,
            updated_at=now,
        )
        if claimed != 1:
            version.refresh_from_db()
            raise NotAllowedNow(
                f"Only a published version can be withdrawn; version {version.number} is "
                f"{version.get_status_display().lower()}."
            )
        version.refresh_from_db()
        audit_log(
            actor=actor,
            action="notice.withdrawn",
            obj=version,
            details={"programme": programme.slug, "version": version.number, "reason": reason},
        )
        transaction.on_commit(lambda: cache.forget(programme.slug))
    return version
