"""Organisations, programmes, who takes part, and people: validate, save and audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from governance import permissions
from governance.models import LegalBasis, Organisation, Participation, Programme, User
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow

ORGANISATION_FIELDS = (
    "ods_code",
    "name",
    "short_name",
    "kind",
    "part_of",
    "postcode",
    "website",
    "dpo_name",
    "dpo_email",
    "ico_registration_number",
    "dspt_status",
    "dspt_year",
    "dspt_published_on",
    "ico_registration_expires_on",
)
PROGRAMME_FIELDS = (
    "slug",
    "name",
    "region",
    "partnership",
    "population",
    "start_date",
    "length_weeks",
    "purposes",
    "overseas_transfer",
    "overseas_transfer_detail",
    "type1_opt_out_applies",
    "type1_opt_out_contact",
    "national_opt_out_applies",
    "national_opt_out_exemption",
)


def _changes(obj: Any, data: dict, allowed: Iterable[str]) -> dict:
    """Apply the allowed fields of data to obj; return {field: [old, new]} for those that changed."""
    changed = {}
    for field in allowed:
        if field in data and getattr(obj, field) != data[field]:
            changed[field] = [getattr(obj, field), data[field]]
            setattr(obj, field, data[field])
    return changed


def _clean_purposes(purposes: Any) -> list[str]:
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise InvalidInput("Purposes are a list of sentences.", field="purposes")
    cleaned = [p.strip() for p in purposes if p.strip()]
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInput("A purpose is listed twice.", field="purposes")
    return cleaned


def _legal_bases(codes: Iterable[str]) -> list[LegalBasis]:
    codes = list(dict.fromkeys(codes))
    found = {lb.code: lb for lb in LegalBasis.objects.filter(code__in=codes)}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise InvalidInput(f"Unknown legal basis: {', '.join(unknown)}.", field="legal_bases")
    return [found[c] for c in codes]


def _programme_end_date(programme: Programme, *, data: dict) -> dt.date | None:
    """Return the programme's end date; InvalidInput when it would fall after 31/12/9999.

    The field named is the length when the input gives one, else the start date.
    """
    try:
        return Programme.compute_end_date(programme.start_date, programme.length_weeks)
    except OverflowError:
        field = "length_weeks" if "length_weeks" in data else "start_date"
        raise InvalidInput(
            f"A programme starting on {programme.start_date.isoformat()} cannot last "
            f"{programme.length_weeks} weeks: it would end after 9999-12-31, the last date "
            "the portal can hold.",
            field=field,
        ) from None


def _check_assurance_fields(organisation: Organisation) -> None:
    """Refuse a DSPT or ICO record that cannot be true, naming the field.

    1. A published status (not "Not Published") is for an assessment year.
    2. It was published on a day already past, no earlier than its year began (1 April).
    3. An ICO registration's expiry belongs to a registration number.
    """
    if organisation.dspt_status != Organisation.DSPTStatus.NOT_PUBLISHED and not (
        organisation.dspt_year
    ):
        raise InvalidInput(
            "Say which assessment year the DSPT status is for, e.g. 2025-26.", field="dspt_year"
        )
    published = organisation.dspt_published_on
    if published is not None:
        if published > timezone.localdate():
            raise InvalidInput(
                "A DSPT assessment is not published on a day still to come.",
                field="dspt_published_on",
            )
        year = organisation.dspt_year
        if year[:4].isdigit() and published < dt.date(int(year[:4]), 4, 1):
            raise InvalidInput(
                f"The {year} assessment cannot have been published before its year began "
                f"(1 April {year[:4]}).",
                field="dspt_published_on",
            )
    if organisation.ico_registration_expires_on and not organisation.ico_registration_number:
        raise InvalidInput(
            "Record the ICO registration number with its expiry.", field="ico_registration_number"
        )


def organisation_create(*, actor: User | None, data: dict) -> Organisation:
    """Add an organisation and log it."""
    organisation = Organisation(**{k: v for k, v in data.items() if k in ORGANISATION_FIELDS})
    organisation.ods_code = (organisation.ods_code or "").strip().upper()
    organisation.full_clean()
    _check_assurance_fields(organisation)
    with transaction.atomic():
        organisation.save()
        audit_log(
            actor=actor,
            action="organisation.created",
            obj=organisation,
            details={"name": organisation.name},
        )
    return organisation


def organisation_update(
    *, actor: User | None, organisation: Organisation, data: dict
) -> Organisation:
    """Change an organisation's details (its ODS code never changes) and log what changed."""
    if "ods_code" in data and data["ods_code"].upper() != organisation.ods_code:
        raise InvalidInput("An organisation's ODS code cannot change.", field="ods_code")
    changed = _changes(organisation, data, (f for f in ORGANISATION_FIELDS if f != "ods_code"))
    if not changed:
        return organisation
    try:
        organisation.full_clean()
        _check_assurance_fields(organisation)
    except Exception:
        organisation.refresh_from_db()  # the caller's object stays what is stored
        raise
    with transaction.atomic():
        organisation.save()
        audit_log(
            actor=actor,
            action="organisation.updated",
            obj=organisation,
            details={"changed": changed},
        )
    return organisation


def programme_create(
    *, actor: User | None, data: dict, legal_basis_codes: Iterable[str] = ()
) -> Programme:
    """Set up a programme (planned), with its derived end date, and log it."""
    fields = {k: v for k, v in data.items() if k in PROGRAMME_FIELDS}
    if "purposes" in fields:
        fields["purposes"] = _clean_purposes(fields["purposes"])
    programme = Programme(**fields)
    programme.end_date = _programme_end_date(programme, data=fields)
    bases = _legal_bases(legal_basis_codes)
    programme.full_clean()
    with transaction.atomic():
        programme.save()
        programme.legal_bases.set(bases)
        audit_log(
            actor=actor,
            action="programme.created",
            obj=programme,
            details={"name": programme.name, "legal_bases": [b.code for b in bases]},
        )
    return programme


def programme_update(
    *,
    actor: User | None,
    programme: Programme,
    data: dict,
    legal_basis_codes: Iterable[str] | None = None,
) -> Programme:
    """Change a programme's details; recompute its end date; log what changed.

    A programme that has ended or whose data was destroyed no longer changes: what
    its notice said stays what happened.
    """
    if not programme.is_open:
        raise NotAllowedNow(
            f"The programme has {programme.get_status_display().lower()} and can no longer change."
        )
    if "slug" in data and data["slug"] != programme.slug:
        raise InvalidInput(
            "A programme's slug cannot change: its notices are published under it.", field="slug"
        )
    data = dict(data)
    if "purposes" in data:
        data["purposes"] = _clean_purposes(data["purposes"])
    changed = _changes(programme, data, PROGRAMME_FIELDS)
    new_end = _programme_end_date(programme, data=data)
    if new_end != programme.end_date:
        changed["end_date"] = [programme.end_date, new_end]
        programme.end_date = new_end
    bases = None
    if legal_basis_codes is not None:
        bases = _legal_bases(legal_basis_codes)
        old = sorted(programme.legal_bases.values_list("code", flat=True))
        new = sorted(b.code for b in bases)
        if old != new:
            changed["legal_bases"] = [old, new]
    if not changed:
        return programme
    programme.full_clean()
    with transaction.atomic():
        programme.save()
        if bases is not None:
            programme.legal_bases.set(bases)
        audit_log(
            actor=actor, action="programme.updated", obj=programme, details={"changed": changed}
        )
    return programme


def programme_go_live(*, actor: User | None, programme: Programme) -> Programme:
    """Move a planned programme to live (claimed with a conditional update)."""
    updated = Programme.objects.filter(pk=programme.pk, status=Programme.Status.PLANNED).update(
        status=Programme.Status.LIVE, updated_at=timezone.now()
    )
    if updated != 1:
        programme.refresh_from_db()
        raise NotAllowedNow(
            f"Only a planned programme can go live; this one is {programme.get_status_display().lower()}."
        )
    programme.refresh_from_db()
    audit_log(actor=actor, action="programme.live", obj=programme)
    return programme


def programmes_mark_ended(*, today: dt.date | None = None) -> list[str]:
    """Mark every live programme whose end date has passed as ended; return their slugs."""
    today = today or timezone.localdate()
    ended = []
    due = Programme.objects.filter(status=Programme.Status.LIVE, end_date__lte=today)
    for programme in due.only("pk", "slug"):
        with transaction.atomic():
            claimed = Programme.objects.filter(
                pk=programme.pk, status=Programme.Status.LIVE
            ).update(status=Programme.Status.ENDED, updated_at=timezone.now())
            if claimed:
                programme.refresh_from_db()
                audit_log(
                    actor=None,
                    action="programme.ended",
                    obj=programme,
                    details={"end_date": programme.end_date.isoformat()},
                )
                ended.append(programme.slug)
    return ended


def participation_add(
    *,
    actor: User | None,
    programme: Programme,
    organisation: Organisation,
    role: str,
    responsibilities: list[str] | None = None,
    description: str = "",
    processes_identifiable_data: bool = True,
    is_lead: bool = False,
) -> Participation:
    """Record that an organisation takes part in a programme in a role."""
    responsibilities = list(dict.fromkeys(responsibilities or []))
    known = set(Participation.Responsibility.values)
    unknown = [r for r in responsibilities if r not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown responsibility: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.",
            field="responsibilities",
        )
    if not programme.is_open:
        raise NotAllowedNow("The programme has ended: nobody joins it now.")
    participation = Participation(
        programme=programme,
        organisation=organisation,
        role=role,
        responsibilities=responsibilities,
        description=description,
        processes_identifiable_data=processes_identifiable_data,
        is_lead=is_lead,
    )
    try:
        participation.full_clean()
    except ValidationError as exc:
        if "__all__" in exc.message_dict and any(
            "already exists" in m for m in exc.message_dict["__all__"]
        ):
            raise InvalidInput(
                f"{organisation.name} already takes part in {programme.name} as {participation.get_role_display().lower()}"
                if Participation.objects.filter(
                    programme=programme, organisation=organisation, role=role
                ).exists()
                else "The programme already has a lead controller.",
                field="organisation" if not is_lead else "is_lead",
            ) from None
        raise
    with transaction.atomic():
        participation.save()
        audit_log(
            actor=actor,
            action="programme.participant_added",
            obj=programme,
            details={
                "organisation": organisation.ods_code,
                "role": role,
                "responsibilities": responsibilities,
            },
        )
    return participation


def participation_remove(*, actor: User | None, participation: Participation) -> None:
    """Take an organisation's role out of a programme that has not started."""
    programme = participation.programme
    if programme.status != Programme.Status.PLANNED:
        raise NotAllowedNow(
            "Only a planned programme's participants can be removed; later, history must stay."
        )
    with transaction.atomic():
        details = {"organisation": participation.organisation.ods_code, "role": participation.role}
        participation.delete()
        audit_log(
            actor=actor, action="programme.participant_removed", obj=programme, details=details
        )


def set_password_path(user: User) -> str:
    """Return the one-time link path with which a new person chooses their password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def user_create(
    *,
    actor: User | None,
    username: str,
    email: str,
    role: str,
    organisations: Iterable[Organisation] = (),
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> User:
    """Add a person with a role, bind them to organisations, and log it.

    Without a password the person has none usable until they follow their set-password link.
    """
    organisations = list(organisations)
    if (
        role in (User.Role.PRACTICE_MANAGER, User.Role.DPO, User.Role.SIGNATORY)
        and not organisations
    ):
        raise InvalidInput(
            "A practice manager, DPO or signatory must be bound to at least one organisation.",
            field="organisations",
        )
    if role == User.Role.PRACTICE_MANAGER:
        wrong = [o.ods_code for o in organisations if o.kind != Organisation.Kind.GP_PRACTICE]
        if wrong:
            raise InvalidInput(
                f"A practice manager is bound to GP practices only, not {', '.join(wrong)}.",
                field="organisations",
            )
    user = User(
        username=username, email=email, role=role, first_name=first_name, last_name=last_name
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save()
        for organisation in organisations:
            permissions.bind(user, organisation)
        audit_log(
            actor=actor,
            action="user.created",
            obj=user,
            details={"role": role, "organisations": [o.ods_code for o in organisations]},
        )
    return user


def user_bind(*, actor: User | None, user: User, organisation: Organisation) -> None:
    """Let the person act for one more organisation."""
    with transaction.atomic():
        permissions.bind(user, organisation)
        audit_log(
            actor=actor,
            action="user.bound",
            obj=user,
            details={"organisation": organisation.ods_code},
        )
