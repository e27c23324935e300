"""The steps of a destruction run; each returns its evidence and may be run again safely."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from datasets.models import Dataset, Job, JobChunk, ProgrammeKey
from destruction.models import (
    Certificate,
    DestructionRun,
    DestructionStep,
)
from destruction.selectors import verify_address
from destruction.services.keys import signing_identity
from governance.models import Participation, Programme
from notices import cache as notices_cache
from phm_portal.errors import NotAllowedNow
from phm_portal.lib import signing

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step found something it cannot go on with; the message is for the CSU admin."""


METHOD = (
    "Purge by cryptographic erase (NIST SP 800-88 Rev. 1): every data key and the "
    "programme's pseudonymisation key were erased, so any copy of the encrypted data is "
    "unreadable; then every file and database row holding the data was deleted."
)


# --- step 1: the manifest ------------------------------------------------------------------
def key_id(wrapped: bytes | memoryview | None) -> str:
    """Return the id of a wrapped data key: the first 16 hex digits of its SHA-256."""
    return "dk-" + hashlib.sha256(bytes(wrapped or b"")).hexdigest()[:16]


def _file_facts(name: str, renew: Callable[[], None]) -> dict:
    if not name or not default_storage.exists(name):
        return {"file": name, "bytes": None, "sha256": None, "present": False}
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(1 << 20), b"")):
            digest.update(block)
            size += len(block)
            if i % 256 == 255:
                renew()
    return {"file": name, "bytes": size, "sha256": digest.hexdigest(), "present": True}


def _temporary_files(job_ids: list[str]) -> list[Path]:
    """Return ciphertext a dead worker left in the temporary folder for these jobs."""
    tmp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    found: list[Path] = []
    for job_id in job_ids:
        found.extend(sorted(tmp.glob(f"{job_id}-*")))
    return found


def manifest_build(*, programme: Programme, renew: Callable[[], None] = lambda: None) -> dict:
    """Return the manifest of everything the programme holds: files, rows and keys."""
    extracts, outputs, vaults, data_keys = [], [], [], []
    for dataset in Dataset.objects.filter(data_flow__programme=programme).order_by(
        "uploaded_at", "id"
    ):
        facts = _file_facts(dataset.file, renew)
        entry = {
            "id": str(dataset.id),
            "name": dataset.original_name,
            "plaintext_bytes": dataset.bytes,
            "plaintext_sha256": dataset.sha256,
            **facts,
        }
        if dataset.wrapped_key:
            entry["data_key"] = key_id(dataset.wrapped_key)
            data_keys.append({"id": entry["data_key"], "protects": f"extract {dataset.id}"})
        extracts.append(entry)
    chunks = JobChunk.objects.filter(job__dataset__data_flow__programme=programme).order_by(
        "job__created_at", "job_id", "index"
    )
    for chunk in chunks:
        for kind, name, wrapped, into in (
            ("output", chunk.output_file, chunk.output_key, outputs),
            ("vault", chunk.vault_file, chunk.vault_key, vaults),
        ):
            if not name and not wrapped:
                continue
            entry = {"id": f"{chunk.job_id}:{chunk.index}", "job": str(chunk.job_id)}
            entry.update(_file_facts(name, renew))
            if wrapped:
                entry["data_key"] = key_id(wrapped)
                data_keys.append({"id": entry["data_key"], "protects": f"{kind} {entry['id']}"})
            into.append(entry)
    job_ids = [
        str(pk)
        for pk in Job.objects.filter(dataset__data_flow__programme=programme).values_list(
            "pk", flat=True
        )
    ]
    temporary = [
        {"file": str(p.name), "bytes": p.stat().st_size} for p in _temporary_files(job_ids)
    ]
    key = ProgrammeKey.objects.filter(programme=programme).first()
    programme_keys = (
        [{"id": str(key.key_id), "created_at": key.created_at.isoformat()}] if key else []
    )

    def total(items: list[dict]) -> int:
        return sum(i.get("bytes") or 0 for i in items)

    return {
        "programme": programme.slug,
        "extracts": extracts,
        "outputs": outputs,
        "vault_parts": vaults,
        "temporary_files": temporary,
        "data_keys": data_keys,
        "programme_keys": programme_keys,
        "jobs": job_ids,
        "totals": {
            "extracts": len(extracts),
            "extract_bytes": total(extracts),
            "outputs": len(outputs),
            "output_bytes": total(outputs),
            "vault_parts": len(vaults),
            "vault_bytes": total(vaults),
            "temporary_files": len(temporary),
            "data_keys": len(data_keys),
            "programme_keys": len(programme_keys),
        },
    }


def manifest_hash(manifest: dict) -> str:
    """Return the SHA-256 of the manifest's canonical JSON (the certificate quotes it)."""
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _step_manifest(run: DestructionRun, renew: Callable[[], None]) -> dict:
    manifest = manifest_build(programme=run.programme, renew=renew)
    digest = manifest_hash(manifest)
    DestructionRun.objects.filter(pk=run.pk).update(manifest=manifest, manifest_sha256=digest)
    return {"manifest_sha256": digest, **manifest["totals"]}


def _manifest_of(run: DestructionRun) -> dict:
    run.refresh_from_db(fields=["manifest", "manifest_sha256"])
    if run.manifest is None or manifest_hash(run.manifest) != run.manifest_sha256:
        raise StepFailed("The run's manifest is missing or does not match its hash.")
    return run.manifest


# --- step 2: erase the keys ---------------------------------------------------------------
def _step_erase_keys(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Erase every wrapped data key and the programme key; from now on nothing is readable."""
    manifest = _manifest_of(run)
    programme = run.programme
    datasets = Dataset.objects.filter(data_flow__programme=programme)
    chunks = JobChunk.objects.filter(job__dataset__data_flow__programme=programme)
    erased_datasets = datasets.exclude(wrapped_key=b"").update(
        wrapped_key=b"", status=Dataset.Status.DESTROYED
    )
    datasets.update(status=Dataset.Status.DESTROYED)
    erased_chunks = chunks.exclude(output_key=None, vault_key=None).update(
        output_key=None, vault_key=None
    )
    deleted_keys, _ = ProgrammeKey.objects.filter(programme=programme).delete()
    now = timezone.now()
    Programme.objects.filter(pk=programme.pk).update(
        status=Programme.Status.DESTROYED, updated_at=now
    )
    DestructionRun.objects.filter(pk=run.pk, destroyed_at=None).update(destroyed_at=now)
    # The public notice pages say from now on that the data was destroyed.
    transaction.on_commit(lambda: notices_cache.forget(programme.slug))
    return {
        "data_keys_erased": [k["id"] for k in manifest["data_keys"]],
        "programme_keys_erased": [k["id"] for k in manifest["programme_keys"]],
        "rows_changed_now": {
            "extract_keys": erased_datasets,
            "part_keys": erased_chunks,
            "programme_keys": deleted_keys,
        },
        "programme_status": Programme.Status.DESTROYED,
    }


# --- step 3: delete the files ---------------------------------------------------------------
def _step_delete_files(run: DestructionRun, renew: Callable[[], None]) -> dict:
    manifest = _manifest_of(run)
    names = [
        e["file"]
        for kind in ("extracts", "outputs", "vault_parts")
        for e in manifest[kind]
        if e.get("file")
    ]
    deleted, already_gone = 0, 0
    for i, name in enumerate(names):
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
        else:
            already_gone += 1
        if i % 50 == 49:
            renew()
    temporary = 0
    for path in _temporary_files(manifest["jobs"]):
        path.unlink(missing_ok=True)
        temporary += 1
    return {
        "files": len(names),
        "bytes": sum(
            e.get("bytes") or 0
            for kind in ("extracts", "outputs", "vault_parts")
            for e in manifest[kind]
        ),
        "deleted_by_this_attempt": deleted,
        "already_gone": already_gone,
        "temporary_files_deleted": temporary,
    }


# --- step 4: delete the rows ---------------------------------------------------------------
def _step_delete_rows(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Delete the rows that name files and keys; extracts and jobs stay as tombstones."""
    programme = run.programme
    chunks, _ = JobChunk.objects.filter(job__dataset__data_flow__programme=programme).delete()
    Dataset.objects.filter(data_flow__programme=programme).update(file="")
    return {
        "part_rows_deleted": chunks,
        "kept": "Extract and job rows stay as tombstones (name, size, counts, status destroyed); "
        "they hold no data and no key. Audit events are never deleted.",
    }


# --- step 5: verify ---------------------------------------------------------------------------
def _step_verify(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Check that nothing of the manifest remains: no file, no key, no readable path."""
    from datasets import services as dataset_services

    manifest = _manifest_of(run)
    programme = run.programme
    checks: list[dict] = []

    def check(what: str, ok: bool) -> None:
        checks.append({"check": what, "passed": ok})

    files = [
        e["file"]
        for kind in ("extracts", "outputs", "vault_parts")
        for e in manifest[kind]
        if e.get("file")
    ]
    remaining = [name for name in files if default_storage.exists(name)]
    check(f"none of the {len(files)} files of the manifest is in storage", not remaining)
    check(
        "no temporary file of the programme's jobs remains",
        not _temporary_files(manifest["jobs"]),
    )
    key_ids = [k["id"] for k in manifest["programme_keys"]]
    check(
        "the programme's pseudonymisation key is gone",
        not ProgrammeKey.objects.filter(programme=programme).exists()
        and not ProgrammeKey.objects.filter(key_id__in=key_ids).exists(),
    )
    check(
        "no extract of the programme holds a data key",
        not Dataset.objects.filter(data_flow__programme=programme)
        .exclude(wrapped_key=b"")
        .exists(),
    )
    check(
        "no output or vault part of the programme remains",
        not JobChunk.objects.filter(job__dataset__data_flow__programme=programme).exists(),
    )
    programme.refresh_from_db()
    try:
        dataset_services.programme_key(programme=programme)
        refused = False
    except NotAllowedNow:
        refused = True
    check("asking for the programme's key is refused", refused)
    jobs = Job.objects.filter(pk__in=manifest["jobs"], status=Job.Status.SUCCEEDED)
    readable = 0
    for job in jobs:
        try:
            next(dataset_services.job_output(job=job), None)
            readable += 1
        except NotAllowedNow:
            pass
    finished = jobs.count()
    check(
        "reading the output of the finished job is refused"
        if finished == 1
        else f"reading the output of each of the {finished:,} finished jobs is refused",
        not readable,
    )
    failed = [c["check"] for c in checks if not c["passed"]]
    if failed:
        raise StepFailed("Verification failed: " + "; ".join(failed) + ".")
    return {"checks": checks, "verified_by": "the portal's automated verification step"}


# --- step 6: the certificate ------------------------------------------------------------------
def certificate_serial(run: DestructionRun) -> str:
    return f"PHM-DC-{run.requested_at:%Y}-{run.pk:06d}"


def _parties(programme: Programme) -> tuple[list[Participation], list[Participation]]:
    participations = list(
        programme.participations.select_related("organisation").order_by("organisation__name")
    )
    controllers = [p for p in participations if p.role in Participation.CONTROLLER_ROLES]
    processors = [p for p in participations if p.role in Participation.PROCESSOR_ROLES]
    return controllers, processors


# Tagged PDF/UA-1; given to the layout and to the writing alike, as HTML.write_pdf does.
CERTIFICATE_PDF_OPTIONS = {"pdf_variant": "pdf/ua-1", "pdf_tags": True}


def certificate_render(*, run: DestructionRun, serial: str, issued_at: dt.datetime) -> bytes:
    """Return the unsigned certificate PDF (WeasyPrint) of a run whose data is destroyed."""
    document = certificate_document(run=run, serial=serial, issued_at=issued_at)
    return document.write_pdf(**CERTIFICATE_PDF_OPTIONS)


def certificate_document(*, run: DestructionRun, serial: str, issued_at: dt.datetime):
    """Return the certificate laid out in pages (a WeasyPrint document), before it is a PDF."""
    import weasyprint

    manifest = _manifest_of(run)
    controllers, processors = _parties(run.programme)
    steps = {s.name: s for s in run.steps.all()}
    html = render_to_string(
        "destruction/certificate_pdf.html",
        {
            "run": run,
            "programme": run.programme,
            "serial": serial,
            "issued_at": issued_at,
            "controllers": controllers,
            "processors": processors,
            "manifest": manifest,
            "totals": manifest["totals"],
            "method": METHOD,
            "erase": steps.get(DestructionStep.Name.ERASE_KEYS),
            "verify": steps.get(DestructionStep.Name.VERIFY),
            "steps": [steps[n] for n in DestructionStep.ORDER if n in steps][:5],
            "verify_address": verify_address(),
        },
    )
    return weasyprint.HTML(string=html, base_url=str(settings.BASE_DIR)).render(
        **CERTIFICATE_PDF_OPTIONS
    )


def _step_certificate(run: DestructionRun, renew: Callable[[], None]) -> dict:
    existing = Certificate.objects.filter(run=run).first()
    if existing is None:
        identity = signing_identity()
        serial = certificate_serial(run)
        issued_at = timezone.now()
        pdf = certificate_render(run=run, serial=serial, issued_at=issued_at)
        signed = signing.sign_pdf(
            pdf,
            identity,
            reason=f"Data destruction certificate {serial}",
            location="PHM governance portal",
            name="PHM governance portal",
        )
        existing = Certificate.objects.create(
            serial=serial,
            run=run,
            programme=run.programme,
            issued_at=issued_at,
            pdf=signed,
            sha256=hashlib.sha256(signed).hexdigest(),
            signer_fingerprint=identity.fingerprint,
        )
    return {
        "serial": existing.serial,
        "pdf_sha256": existing.sha256,
        "signer_fingerprint": existing.signer_fingerprint,
    }


# --- step 7: delivery ---------------------------------------------------------------------
def _step_deliver(run: DestructionRun, renew: Callable[[], None]) -> dict:
    certificate = Certificate.objects.get(run=run)
    controllers, _ = _parties(run.programme)
    recipients = sorted({p.organisation.dpo_email for p in controllers if p.organisation.dpo_email})
    without = sorted({p.organisation.name for p in controllers if not p.organisation.dpo_email})
    if recipients:
        body = render_to_string(
            "destruction/certificate_email.txt",
            {
                "programme": run.programme,
                "certificate": certificate,
                "run": run,
                "verify_address": verify_address(),
            },
        )
        message = EmailMessage(
            subject=f"Data destruction certificate {certificate.serial}: {run.programme.name}",
            body=body,
            to=recipients,
        )
        message.attach(f"{certificate.serial}.pdf", bytes(certificate.pdf), "application/pdf")
        message.send()
    return {"sent_to": recipients, "controllers_without_dpo_email": without}


STEPS: dict[str, tuple[Callable[[DestructionRun, Callable[[], None]], dict], bool]] = {
    DestructionStep.Name.MANIFEST: (_step_manifest, False),
    DestructionStep.Name.ERASE_KEYS: (_step_erase_keys, True),
    DestructionStep.Name.DELETE_FILES: (_step_delete_files, False),
    DestructionStep.Name.DELETE_ROWS: (_step_delete_rows, True),
    DestructionStep.Name.VERIFY: (_step_verify, False),
    DestructionStep.Name.CERTIFICATE: (_step_certificate, True),
    DestructionStep.Name.DELIVER: (_step_deliver, False),
}
