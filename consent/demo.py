"""Synthetic Type 1 opt-outs at the demo practices, so their pages are not empty.

NHS numbers are drawn from the 999 test range (never issued to a patient) with a
fixed seed, so loading twice finds the same patients and adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from consent import services
from consent.models import PracticeListSize, Type1Event
from governance import demo as governance_demo
from governance.models import Organisation, User
from phm_portal.lib.nhs_number import synthetic

OPT_OUTS_PER_PRACTICE = 8
LIST_SIZE = 6000


def load(*, stdout) -> None:
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
    stdout.write(f"Consent demo: {added} synthetic Type 1 opt-outs recorded.")
