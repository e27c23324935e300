"""Benchmark: import 100,000 Type 1 lines from a practice-system CSV.

Target (issue 4): "in seconds, not minutes". Measures the service alone and the
whole API call (multipart upload, parsing, validation, storage, audit).
Run: PHM_DEMO=1 .venv/bin/python bench/consent_import.py
"""

from __future__ import annotations

import datetime as dt
import time

import _setup

LINES = 100_000
TARGET_SECONDS = 10.0  # "seconds, not minutes": the figure we hold ourselves to


def main() -> None:
    where, drop = _setup.database()
    try:
        from django.core.files.uploadedfile import SimpleUploadedFile
        from rest_framework.test import APIClient

        from consent import services
        from consent.models import Type1Event
        from governance.models import Organisation, User
        from governance.permissions import bind

        practices = [
            Organisation.objects.create(ods_code=code, name=f"Bench {code}", kind="gp_practice")
            for code in ("Y90001", "Y90002")
        ]
        user = User(username="bench-pm", role="practice_manager")
        user.set_unusable_password()
        user.save()
        for p in practices:
            bind(user, p)
        day = (dt.date.today() - dt.timedelta(days=7)).isoformat()

        def csv_for(seed: int) -> bytes:
            rows = ["nhs_number,event,recorded_on"]
            rows += [f"{n},dissent,{day}" for n in _setup.nhs_numbers(LINES, seed=seed)]
            return ("\r\n".join(rows) + "\r\n").encode()

        data = csv_for(1)
        start = time.perf_counter()
        report = services.type1_import(actor=user, practice=practices[0], data=data)
        service_s = time.perf_counter() - start
        assert report.stored and report.accepted == LINES, report.as_dict()

        data = csv_for(2)
        client = APIClient()
        client.force_authenticate(user)
        start = time.perf_counter()
        response = client.post(
            f"/api/v1/practices/{practices[1].ods_code}/type1-opt-outs/import/",
            {"file": SimpleUploadedFile("bench.csv", data, "text/csv")},
            format="multipart",
        )
        api_s = time.perf_counter() - start
        assert response.status_code == 201, response.content[:500]
        assert Type1Event.objects.count() == 2 * LINES

        print(f"consent_import on {where}: {LINES:,} lines, {len(data) / 1e6:.1f} MB")
        print(
            f"  service (type1_import):        {service_s:6.2f} s  ({LINES / service_s:,.0f} lines/s)"
        )
        print(f"  API (POST .../import/, upload): {api_s:6.2f} s  ({LINES / api_s:,.0f} lines/s)")
        print(f"  ratio to the {TARGET_SECONDS:.0f} s baseline: {api_s / TARGET_SECONDS:.2f}")
    finally:
        drop()


if __name__ == "__main__":
    main()
