"""Synthetic consent data for the demo: opt-outs, cohorts and national checks.

1. A few Type 1 opt-outs at each demo practice, so its pages are not empty.
2. A demo cohort at each demo practice: patients the practice knows, so that a national
   data opt-out check has someone to submit and a demo extract someone to hold.
3. For each demo programme that applies the national data opt-out and has no unexpired
   check, a complete check of its cohort (marked as demo data), so that a new user can
   upload an extract and pseudonymise it at once. About 3% of its patients "opted out".

NHS numbers are drawn from the 999 test range (never issued to a patient) with a fixed
seed, so loading twice finds the same patients and adds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from django.utils import timezone

from consent import selectors, services
from consent.files import national_submission
from consent.models import NationalOptOutCheck, PracticeListSize, Type1Event
from governance import demo as governance_demo
from governance.models import Organisation, Programme, User
from phm_portal.lib.crypto import blind_indexer
from phm_portal.lib.nhs_number import synthetic

OPT_OUTS_PER_PRACTICE = 8
LIST_SIZE = 6000
COHORT_PER_PRACTICE = 150
# About 3% of the demo's patients have registered a national data opt-out.
NATIONAL_OPTED_OUT_PER_THOUSAND = 30
DEMO_ADMIN = "csu-admin"


def cohort_numbers(ods_code: str) -> list[str]:
    """Return the demo cohort of a demo practice, the same every time; [] for any other."""
    code = ods_code.strip().upper()
    demo_codes = {p["ods_code"] for ps in governance_demo.PRACTICES.values() for p in ps}
    if code not in demo_codes:
        return []
    rng = random.Random(f"demo-cohort-{code}")  # noqa: S311 - synthetic data
    numbers: set[str] = set()
    while len(numbers) < COHORT_PER_PRACTICE:
        numbers.add(synthetic(rng))
    return sorted(numbers)


def nationally_opted_out(nhs_number: str) -> bool:
    """Say whether this demo patient has a national data opt-out (about 3%, always the same)."""
    digest = hashlib.sha256(f"demo-national-opt-out-{nhs_number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < NATIONAL_OPTED_OUT_PER_THOUSAND


def load(*, stdout) -> None:
    """Record the demo's opt-outs, cohorts and national checks, each only if missing."""
    added = _load_type1()
    stdout.write(f"Consent demo: {added} synthetic Type 1 opt-outs recorded.")
    admin = User.objects.filter(username=DEMO_ADMIN).first()
    if admin is None:
        return
    noted, practices = _load_cohorts(admin)
    if noted:
        stdout.write(
            f"Consent demo: {noted:,} synthetic patients noted in the demo cohorts of "
            f"{practices} practices."
        )
    checks = _load_national_checks(admin)
    if checks:
        for check in checks:
            stdout.write(
                f"Consent demo: a national data opt-out check of {check.programme.name} recorded "
                f"(demo data): {check.opted_out} of {check.submitted:,} patients opted out, "
                f"usable until {check.expires_on:%d %B %Y}."
            )
    else:
        stdout.write(
            "Consent demo: every demo programme applying the national data opt-out has an "
            "unexpired check; none recorded."
        )


def _demo_practices():
    for practices in governance_demo.PRACTICES.values():
        for spec in practices:
            practice = Organisation.objects.filter(ods_code=spec["ods_code"]).first()
            if practice is not None:
                yield practice


def _load_type1() -> int:
    """Record a few dissents (and one withdrawal) at each demo practice, once."""
    added = 0
    today = timezone.localdate()
    for slug, practices in governance_demo.PRACTICES.items():
        manager = User.objects.filter(username=f"pm-{slug}").first()
        if manager is None:
            continue
        for spec in practices:
            practice = Organisation.objects.filter(ods_code=spec["ods_code"]).first()
            if practice is None or Type1Event.objects.filter(practice=practice).exists():
                continue
            rng = random.Random(f"demo-type1-{practice.ods_code}")  # noqa: S311 - synthetic data
            numbers = sorted({synthetic(rng) for _ in range(OPT_OUTS_PER_PRACTICE)})
            for i, number in enumerate(numbers):
                asked = today - dt.timedelta(days=20 + 37 * i)
                services.type1_opt_out_record(
                    actor=manager,
                    practice=practice,
                    nhs_number=number,
                    event="dissent",
                    method=["letter", "in_person", "phone", "online"][i % 4],
                    recorded_on=asked,
                )
                added += 1
            services.type1_opt_out_record(
                actor=manager,
                practice=practice,
                nhs_number=numbers[-1],
                event="withdrawal",
                method="letter",
                recorded_on=today - dt.timedelta(days=10),
            )
            if not PracticeListSize.objects.filter(practice=practice).exists():
                services.practice_list_size_record(
                    actor=manager,
                    practice=practice,
                    as_of=today - dt.timedelta(days=365),
                    patients=LIST_SIZE + rng.randrange(4000),
                )
    return added


def _load_cohorts(admin: User) -> tuple[int, int]:
    """Note each demo practice's cohort where the practice does not know it yet.

    Return how many patients were noted, and at how many practices.
    """
    index_of = blind_indexer()
    noted = practices = 0
    for practice in _demo_practices():
        known = selectors.patient_indexes_registered_at([practice.pk])
        missing = [n for n in cohort_numbers(practice.ods_code) if index_of(n) not in known]
        if missing:
            noted += services.patients_note_at_practice(
                actor=admin, practice=practice, nhs_numbers=missing
            )
            practices += 1
    return noted, practices


def _load_national_checks(admin: User) -> list[NationalOptOutCheck]:
    """Record a complete demo check of each demo programme that needs one and has none usable.

    The check is started as the portal starts any (its cohort, never sent over MESH);
    the national service's reply is made here: every number submitted but those of the
    patients who "opted out" (nationally_opted_out), imported as a reply would be.
    """
    recorded = []
    programmes = (
        Programme.objects.filter(slug__in=governance_demo.SLUGS, national_opt_out_applies=True)
        .exclude(status__in=[Programme.Status.ENDED, Programme.Status.DESTROYED])
        .order_by("slug")
    )
    for programme in programmes:
        if selectors.national_usable_checks(programme).exists():
            continue
        check = services.national_check_start(actor=admin, programme=programme, demo=True)
        returned = [
            n for n in selectors.national_check_submission(check) if not nationally_opted_out(n)
        ]
        recorded.append(
            services.national_check_complete(
                actor=admin, check=check, returned=national_submission(returned)
            )
        )
    return recorded
