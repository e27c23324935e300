"""Destruction asks every app's shredder (phm_portal.shredders) and touches no app's models."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from pypdf import PdfReader

from consent import selectors as consent_selectors
from consent import services as consent
from consent.models import (
    NationalOptOutCheck,
    NationalOptOutEntry,
    Patient,
    Registration,
    RegistrationFromExtract,
)
from datasets import services as dataset_services
from destruction import services
from destruction.models import DestructionRun
from governance.models import Participation
from phm_portal.lib.crypto import blind_index
from phm_portal.shredders import shredders
from tests.datasets.conftest import upload_extract
from tests.destruction.conftest import end, run_all
from tests.factories import ParticipationFactory, ProgrammeFactory

ROOT = Path(__file__).resolve().parents[2]
ONLY_EXTRACT = "9434765919"  # named only by the destroyed programme's extract
ALSO_TYPE1 = "4010232137"  # also a Type 1 dissent at the practice
ALSO_OTHER = "9990000018"  # also in another programme's extract at the same practice


def test_every_app_that_holds_a_programmes_data_registers_a_shredder():
    assert sorted(s.app for s in shredders()) == ["consent", "datasets", "notices"]


def test_destruction_imports_no_other_apps_models():
    # Their functions (datasets' selectors and services: the jobs that hold destruction)
    # it may call; their models it never touches.
    imported = set()
    for path in (ROOT / "destruction").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.update(
                    (f"{node.module}.{a.name}", path.relative_to(ROOT).as_posix())
                    for a in node.names
                )
            elif isinstance(node, ast.Import):
                imported.update((a.name, path.relative_to(ROOT).as_posix()) for a in node.names)
    others = sorted(
        (module, where)
        for module, where in imported
        if module.split(".")[0] in {"datasets", "consent", "notices"}
        and "models" in module.split(".")
    )
    assert others == []


def _setting(programme, practice_a, admin, alice):
    """Extract of the programme naming three patients; one also has a Type 1 dissent,
    one is also in another programme's extract at the same practice."""
    other = ProgrammeFactory(slug="otherton", name="Otherton PHM")
    ParticipationFactory(
        programme=other, organisation=practice_a, role=Participation.Role.CONTROLLER
    )
    consent.type1_opt_out_record(
        actor=alice, practice=practice_a, nhs_number=ALSO_TYPE1, event="dissent",
        method="letter", recorded_on=programme.start_date,
    )  # fmt: skip
    consent.patients_note_at_practice(
        actor=admin, practice=practice_a, nhs_numbers=[ALSO_OTHER], programme=other
    )
    return other


def test_numbers_only_the_programmes_extracts_brought_are_gone_after_destruction(
    api, admin, alice, flow, programme, practice_a, settings, mailoutbox
):
    other = _setting(programme, practice_a, admin, alice)
    rows = [
        f"{n},Pat,1960-03-01,CB1 2AB,A81001,XaZ89" for n in (ONLY_EXTRACT, ALSO_TYPE1, ALSO_OTHER)
    ]
    dataset = upload_extract(api(alice), flow, rows)
    assert dataset_services.dataset_note_patients(dataset_id=dataset.pk) == 3
    check = consent.national_check_start(actor=admin, programme=programme)
    assert check.submitted == 3
    assert RegistrationFromExtract.objects.filter(programme=programme).count() == 3

    run = run_all(services.programme_destroy(actor=admin, programme=end(programme)))
    assert run.status == DestructionRun.Status.SUCCEEDED, run.error

    # The number only the extract brought is gone, encrypted or as its blind index.
    assert not Patient.objects.filter(nhs_index=blind_index(ONLY_EXTRACT)).exists()
    kept = set(Patient.objects.values_list("nhs_index", flat=True))
    assert {blind_index(ALSO_TYPE1), blind_index(ALSO_OTHER)} <= kept
    assert not RegistrationFromExtract.objects.filter(programme=programme).exists()
    assert Registration.objects.filter(practice=practice_a).count() == 2
    # The programme's check results are gone; its record stays, purged.
    check.refresh_from_db()
    assert check.status == NationalOptOutCheck.Status.PURGED
    assert not NationalOptOutEntry.objects.filter(check_run=check).exists()
    # A check of the other programme at the same practice does not submit it.
    later = consent.national_check_start(actor=admin, programme=other)
    submitted = consent_selectors.national_check_submission(later)
    assert sorted(submitted) == sorted([ALSO_TYPE1, ALSO_OTHER])
    # The evidence and the certificate say each app's part.
    rows_step = run.steps.get(name="delete_rows").evidence["apps"]["consent"]
    assert rows_step["cohort_entries_deleted"] == 1 and rows_step["patients_deleted"] == 1
    assert rows_step["national_check_results_deleted"] == 3
    consent_checks = [
        c for c in run.steps.get(name="verify").evidence["checks"] if c["app"] == "consent"
    ]
    assert len(consent_checks) == 3 and all(c["passed"] for c in consent_checks)
    text = " ".join(
        " ".join(page.extract_text().split())
        for page in PdfReader(io.BytesIO(bytes(run.certificate.pdf))).pages
    )
    assert "Opt-outs and cohorts" in text
    assert "Cohort entries learned only from the programme's extracts 1" in text
    assert "Privacy notice versions (kept: no personal data)" in text
    assert "Extracts received (stored encrypted) 1" in text
