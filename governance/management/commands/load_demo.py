from __future__ import annotations

import datetime as dt
import importlib
import importlib.util

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from governance import demo, services
from governance.models import (
    DPIA,
    DataFlow,
    Organisation,
    Participation,
    Programme,
    SharingAgreement,
    User,
)
from governance.permissions import bind
from governance.services import assurance
from governance.services.watch import assurance_watch

KINDS = ("organisations", "programmes", "users", "data_flows")


def _counts(counts: dict[str, int]) -> str:
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in KINDS if counts[k]]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def loaded_message(made: dict[str, int], kept: dict[str, int]) -> str:
    """Return what load_demo says: what it added, and what was there already if anything."""
    if not any(kept.values()):
        said = f"Demo data loaded: {_counts(made)} added."
    elif not any(made.values()):
        said = f"Demo data ready: nothing added, all of it was there already ({_counts(kept)})."
    else:
        said = f"Demo data ready: {_counts(made)} added; {_counts(kept)} were there already."
    return said + " Demo users sign in with DEMO_PASSWORD."


class Command(BaseCommand):
    help = (
        "Load the five demo regions, their organisations, demo users, data flows and what "
        "the flows stand on (DPIAs, agreements, DSPT, ICO), then run the assurance watch "
        "(idempotent)."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            made, kept = self._load()
        # Whatever lapsed since (and the demo's one lapsed flow) is suspended now, and the
        # reminders due are sent, as the daily beat task would.
        for line in assurance_watch().lines():
            self.stdout.write(line)
        # Each later app adds its own demo data in `<app>/demo.py: load(stdout)`, in
        # INSTALLED_APPS order; found by name so governance never imports them.
        for config in apps.get_app_configs():
            if config.name in ("governance", "phm_portal") or "." in config.name:
                continue
            module_name = f"{config.name}.demo"
            if importlib.util.find_spec(module_name) is None:
                continue
            with transaction.atomic():
                importlib.import_module(module_name).load(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(loaded_message(made, kept)))

    def _load(self) -> tuple[dict[str, int], dict[str, int]]:
        """Add what is missing; return how many of each were added and how many were there."""
        made = {"organisations": 0, "programmes": 0, "users": 0}
        kept = dict.fromkeys(KINDS, 0)
        orgs: dict[str, Organisation] = {}
        every = demo.ORGANISATIONS + [p for practices in demo.PRACTICES.values() for p in practices]
        for data in every:
            org = Organisation.objects.filter(ods_code=data["ods_code"]).first()
            if org is None:
                org = services.organisation_create(actor=None, data=data)
                made["organisations"] += 1
            else:
                kept["organisations"] += 1
            orgs[org.ods_code] = org
        today = timezone.localdate()
        for org in orgs.values():
            self._assure_organisation(org, today)

        for spec in demo.PROGRAMMES:
            slug = spec["fields"]["slug"]
            programme = Programme.objects.filter(slug=slug).first()
            if programme is not None:
                kept["programmes"] += 1
                continue
            fields = dict(spec["fields"])
            # Started some weeks ago, on a Monday, so the demo is always live.
            start = today - dt.timedelta(weeks=spec["started_weeks_ago"])
            fields["start_date"] = start - dt.timedelta(days=start.weekday())
            programme = services.programme_create(
                actor=None, data=fields, legal_basis_codes=spec["legal_bases"]
            )
            for entry in spec["participants"]:
                ods, role, responsibilities, description, identifiable = entry[:5]
                lead = len(entry) > 5 and entry[5] == "lead"
                targets = demo.PRACTICES[slug] if ods == "PRACTICES" else [{"ods_code": ods}]
                for i, target in enumerate(targets):
                    services.participation_add(
                        actor=None,
                        programme=programme,
                        organisation=orgs[target["ods_code"]],
                        role=role,
                        responsibilities=responsibilities,
                        description=description,
                        processes_identifiable_data=identifiable,
                        is_lead=lead or (ods == "PRACTICES" and role == "controller" and i == 0),
                    )
            services.programme_go_live(actor=None, programme=programme)
            made["programmes"] += 1

        people = [
            ("csu-admin", "Casey", "Admin", User.Role.CSU_ADMIN, [demo.NECS]),
            ("csu-admin-2", "Sam", "Second", User.Role.CSU_ADMIN, [demo.NECS]),
            ("auditor", "Alex", "Auditor", User.Role.AUDITOR, []),
        ]
        for slug in demo.SLUGS:
            lead = Participation.objects.get(programme__slug=slug, is_lead=True).organisation
            people.append((f"dpo-{slug}", "DPO", slug, User.Role.DPO, [lead.ods_code]))
            first_practice = demo.PRACTICES[slug][0]["ods_code"]
            people.append(
                (
                    f"pm-{slug}",
                    "Practice manager",
                    slug,
                    User.Role.PRACTICE_MANAGER,
                    [first_practice],
                )
            )
        for username, first, last, signs_for in demo.SIGNATORIES:
            people.append(
                (
                    username,
                    first,
                    last,
                    User.Role.SIGNATORY,
                    demo.signatory_organisations(signs_for),
                )
            )
        for username, first, last, role, ods_codes in people:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = services.user_create(
                    actor=None,
                    username=username,
                    email=f"{username}@example.nhs.uk",
                    role=role,
                    organisations=[orgs[o] for o in ods_codes],
                    first_name=first,
                    last_name=last,
                    password=settings.DEMO_PASSWORD,
                )
                made["users"] += 1
            else:
                kept["users"] += 1
                for o in ods_codes:
                    bind(user, orgs[o])
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
        made["data_flows"], kept["data_flows"] = self._load_flows(orgs)
        return made, kept

    def _load_flows(self, orgs: dict[str, Organisation]) -> tuple[int, int]:
        """Add the notices' data flows, each through the workflow (four eyes); skip existing ones."""
        drafter = User.objects.get(username="csu-admin")
        decider = User.objects.get(username="csu-admin-2")
        programmes = {p.slug: p for p in Programme.objects.filter(slug__in=demo.SLUGS)}
        added = kept = 0
        to_approve: list[DataFlow] = []
        for (
            slug,
            source,
            destination,
            categories,
            identifiability,
            outcome,
            purpose,
        ) in demo.expanded_flows():
            existing = DataFlow.objects.filter(
                programme=programmes[slug],
                source=orgs[source],
                destination=orgs[destination],
                identifiability=identifiability,
            )
            if any(sorted(f.data_categories) == sorted(categories) for f in existing):
                kept += 1
                continue
            flow = services.data_flow_create(
                actor=drafter,
                programme=programmes[slug],
                source=orgs[source],
                destination=orgs[destination],
                data_categories=categories,
                identifiability=identifiability,
                legal_basis_codes=demo.FLOW_LEGAL_BASES,
                purpose=purpose,
                dpia_reference=demo.dpia_reference(slug),
                dsa_reference=demo.dsa_reference(slug, source, destination),
            )
            added += 1
            if outcome == "draft":
                continue
            services.data_flow_submit(actor=drafter, flow=flow)
            if outcome == "approved":
                to_approve.append(flow)
            elif outcome == "rejected":
                services.data_flow_reject(actor=decider, flow=flow, reason=demo.REJECTION_REASON)
        # Approval needs what a flow stands on (governance.assurance): record it first.
        for slug in demo.SLUGS:
            self._assure_programme(programmes[slug], orgs, drafter)
        for flow in to_approve:
            services.data_flow_approve(
                actor=decider, flow=flow, comment="DPIA and data sharing agreement checked."
            )
        self._lapse(programmes[demo.LAPSED_FLOW[0]])
        return added, kept

    def _assure_organisation(self, org: Organisation, today: dt.date) -> None:
        """Give a demo organisation DSPT Standards Met (or Exceeded) and an ICO registration in date.

        Only one with no DSPT status yet: loading again keeps what people changed since.
        """
        if org.dspt_status != Organisation.DSPTStatus.NOT_PUBLISHED:
            return
        start = today.year - 1 if today.month >= 7 else today.year - 2
        services.organisation_update(
            actor=None,
            organisation=org,
            data={
                "dspt_status": Organisation.DSPTStatus.EXCEEDED
                if org.ods_code in demo.DSPT_EXCEEDED
                else Organisation.DSPTStatus.MET,
                "dspt_year": f"{start}-{(start + 1) % 100:02d}",
                "dspt_published_on": dt.date(start + 1, 6, 20),
                "ico_registration_number": org.ico_registration_number
                or demo.ico_number(org.ods_code),
                "ico_registration_expires_on": today
                + dt.timedelta(
                    days=demo.ICO_EXPIRES_IN_DAYS_OF.get(org.ods_code, demo.ICO_EXPIRES_IN_DAYS)
                ),
            },
        )

    def _assure_programme(
        self, programme: Programme, orgs: dict[str, Organisation], drafter: User
    ) -> None:
        """Record the programme's DPIA and data sharing agreement, signed, through the services.

        The DPIA covers every flow proposed; the region's DPO advises and each controller's
        signatory signs it off. The agreement names both ends of each flow and each party's
        signatory signs it. Skipped when the programme has its DPIA already.
        """
        slug = programme.slug
        if DPIA.objects.filter(programme=programme, title=demo.dpia_title(slug)).exists():
            return
        today = timezone.localdate()
        signatories = {
            ods: User.objects.get(username=username)
            for username, _, _, signs_for in demo.SIGNATORIES
            for ods in demo.signatory_organisations(signs_for)
        }
        flows = list(
            DataFlow.objects.filter(programme=programme)
            .exclude(status=DataFlow.Status.REJECTED)
            .select_related("source", "destination")
            .order_by("pk")
        )
        dpia = assurance.dpia_create(
            actor=drafter,
            programme=programme,
            title=demo.dpia_title(slug),
            description=(
                f"{programme.name}: GP and other care records are linked and pseudonymised to "
                "find groups of patients who could benefit from support, and to plan services."
            ),
            necessity=(
                "Only the data needed for the analysis is sent; identifiable data reaches only "
                "the processor that pseudonymises it, and only practices re-identify their own "
                "patients. Opt-outs are applied before any data leaves."
            ),
            review_date=today + dt.timedelta(days=demo.DPIA_REVIEW_IN_DAYS),
            data_flow_ids=[f.pk for f in flows],
            risks=demo.DPIA_RISKS,
        )
        dpo = User.objects.get(username=f"dpo-{slug}")
        dpia = assurance.dpia_record_dpo_advice(
            actor=dpo,
            dpia=dpia,
            advice="The measures reduce the risks to low; proceed, and review before renewal.",
            followed=True,
        )
        controllers = Participation.objects.filter(
            programme=programme, role__in=Participation.CONTROLLER_ROLES
        ).select_related("organisation")
        for organisation in sorted({p.organisation for p in controllers}, key=lambda o: o.name):
            dpia = assurance.dpia_sign_off(
                actor=signatories[organisation.ods_code], dpia=dpia, organisation=organisation
            )

        lapsing = [f for f in flows if self._is_lapsing(f)]
        expires_in = (
            demo.AGREEMENT_EXPIRES_SOON_IN_DAYS
            if slug == demo.AGREEMENT_EXPIRES_SOON
            else demo.AGREEMENT_EXPIRES_IN_DAYS
        )
        groups = [(demo.agreement_title(slug), [f for f in flows if f not in lapsing], expires_in)]
        if lapsing:
            # Approved while in date; load_demo then lets it run out (see _lapse).
            groups.append((demo.LAPSED_AGREEMENT_TITLE, lapsing, 14))
        for title, covered, days in groups:
            parties = sorted(
                {o.ods_code for f in covered for o in (f.source, f.destination)},
            )
            agreement = assurance.sharing_agreement_create(
                actor=drafter,
                programme=programme,
                title=title,
                reference=f"DSA-{demo.REGION_CODES[slug]}-{today.year}",
                purpose=f"Share the data {programme.name} needs, for its purposes only.",
                start_date=programme.start_date,
                review_date=today + dt.timedelta(days=min(days, 180) - 7),
                expiry_date=today + dt.timedelta(days=days),
                party_ods_codes=parties,
                legal_basis_codes=demo.AGREEMENT_LEGAL_BASES,
                data_flow_ids=[f.pk for f in covered],
            )
            for ods in parties:
                assurance.sharing_agreement_sign(
                    actor=signatories[ods],
                    agreement=agreement,
                    organisation=orgs[ods],
                    signed_on=programme.start_date,
                )

    @staticmethod
    def _is_lapsing(flow: DataFlow) -> bool:
        slug, source, destination, identifiability = demo.LAPSED_FLOW
        return (
            flow.programme.slug == slug
            and flow.source.ods_code == source
            and flow.destination.ods_code == destination
            and flow.identifiability == identifiability
        )

    def _lapse(self, programme: Programme) -> None:
        """Let the demo's lapsing agreement run out yesterday, as time would have.

        A signed agreement no longer changes through the services (a new version is recorded
        instead); the demo sets the dates that the passing weeks would have brought.
        """
        today = timezone.localdate()
        SharingAgreement.objects.filter(
            programme=programme,
            title=demo.LAPSED_AGREEMENT_TITLE,
            expiry_date__gte=today,
        ).update(
            review_date=today - dt.timedelta(days=14), expiry_date=today - dt.timedelta(days=1)
        )
