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
from governance.models import DataFlow, Organisation, Participation, Programme, User
from governance.permissions import bind

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
    help = "Load the five demo regions, their organisations and demo users (idempotent)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            made, kept = self._load()
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
                services.data_flow_approve(
                    actor=decider, flow=flow, comment="DPIA and data sharing agreement checked."
                )
            elif outcome == "rejected":
                services.data_flow_reject(actor=decider, flow=flow, reason=demo.REJECTION_REASON)
        return added, kept
