"""Every write of the destruction app: runs and their steps, certificates, signing key, reminders.

After pretix's shredder: a function says why destruction may not run yet; a manifest of
what will be destroyed is written before anything is destroyed; destruction happens in
transactions; audit events are never deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage, send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from datasets.models import Dataset, Job, JobChunk, ProgrammeKey
from destruction.models import (
    Certificate,
    DestructionReminder,
    DestructionRun,
    DestructionStep,
    SigningCertificate,
)
from governance.models import Participation, Programme, User
from notices import cache as notices_cache
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib import signing

log = logging.getLogger(__name__)

METHOD = (
    "Purge by cryptographic erase (NIST SP 800-88 Rev. 1): every data key and the "
    "programme's pseudonymisation key were erased, so any copy of the encrypted data is "
    "unreadable; then every file and database row holding the data was deleted."
)


# --- when ----------------------------------------------------------------------------
def programme_destruction_blocker(
    *, programme: Programme, early: bool = False, today: dt.date | None = None
) -> str | None:
    """Return why the programme's data may not be destroyed now, or None if it may."""
    today = today or timezone.localdate()
    if programme.status == Programme.Status.DESTROYED:
        return "The programme's data was already destroyed."
    ended = programme.status == Programme.Status.ENDED or (
        programme.end_date is not None and programme.end_date <= today
    )
    if not ended and not early:
        when = (
            f"on {programme.end_date:%-d %B %Y}"
            if programme.end_date
            else "on a date not yet recorded"
        )
        return (
            f"The programme has not ended (it ends {when}). To destroy its data before the "
            "end, ask for early destruction and give the reason."
        )
    running = Job.objects.filter(
        dataset__data_flow__programme=programme, status__in=Job.ACTIVE
    ).first()
    if running is not None:
        return (
            f"A pseudonymisation job of the programme is still {running.status} (job {running.pk}); "
            "wait for it to finish or cancel it first."
        )
    return None


def programme_destroy(
    *, actor: User, programme: Programme, early: bool = False, reason: str = ""
) -> DestructionRun:
    """Start (or resume) the destruction of everything the programme holds.

    1. A run already queued or running is returned as it is (asking twice is harmless).
    2. A failed run is resumed: its failed step starts again, finished steps are kept.
    3. Otherwise the blocker decides; early destruction needs a reason and ends the
       programme now, so that no new data arrives while it runs.
    """
    reason = (reason or "").strip()
    active = programme.destruction_runs.filter(status__in=DestructionRun.ACTIVE).first()
    if active is not None:
        transaction.on_commit(lambda: _send(active.pk))
        return active
    failed = programme.destruction_runs.filter(status=DestructionRun.Status.FAILED).first()
    if failed is not None and programme.status == Programme.Status.DESTROYED:
        return _resume(actor=actor, run=failed)
    if early and not reason:
        raise InvalidInput("Say why the data must be destroyed before the end.", field="reason")
    blocker = programme_destruction_blocker(programme=programme, early=early)
    if blocker:
        raise NotAllowedNow(blocker)
    if failed is not None:
        return _resume(actor=actor, run=failed)
    is_early = programme.status != Programme.Status.ENDED and early
    was_live = programme.status != Programme.Status.ENDED
    try:
        with transaction.atomic():
            run = DestructionRun.objects.create(
                programme=programme,
                requested_by=actor,
                early=is_early,
                reason=reason if is_early else "",
            )
            DestructionStep.objects.bulk_create(
                DestructionStep(run=run, index=i, name=name)
                for i, name in enumerate(DestructionStep.ORDER)
            )
            if was_live:
                # No new data may arrive while the run goes on.
                Programme.objects.filter(pk=programme.pk).exclude(
                    status=Programme.Status.DESTROYED
                ).update(status=Programme.Status.ENDED, updated_at=timezone.now())
                audit_log(
                    actor=actor,
                    action="programme.ended_early" if is_early else "programme.ended",
                    obj=programme,
                    details={"reason": reason, "run": run.pk} if is_early else {"run": run.pk},
                )
            audit_log(
                actor=actor,
                action="destruction.requested",
                obj=programme,
                details={"run": run.pk, "early": is_early, "reason": reason if is_early else ""},
            )
            transaction.on_commit(lambda: _send(run.pk))
    except IntegrityError:  # two clicks at once: the other made the run
        return programme.destruction_runs.get(status__in=DestructionRun.ACTIVE)
    programme.refresh_from_db()
    return run


def _resume(*, actor: User, run: DestructionRun) -> DestructionRun:
    with transaction.atomic():
        reopened = DestructionRun.objects.filter(
            pk=run.pk, status=DestructionRun.Status.FAILED
        ).update(status=DestructionRun.Status.QUEUED, error="", finished_at=None)
        if reopened:
            run.steps.filter(status=DestructionStep.Status.FAILED).update(
                status=DestructionStep.Status.PENDING, lease_until=None
            )
            audit_log(
                actor=actor,
                action="destruction.resumed",
                obj=run.programme,
                details={"run": run.pk},
            )
            transaction.on_commit(lambda: _send(run.pk))
    run.refresh_from_db()
    return run


def _send(run_id: int) -> None:
    from destruction.tasks import destruction_run

    destruction_run.delay(run_id)


# --- the run ----------------------------------------------------------------------------
class StepBusy(Exception):
    """Another worker holds the step's lease; try again when it may have expired."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"step leased for {seconds:.0f}s more")
        self.seconds = seconds


class StepFailed(Exception):
    """A step found something it cannot go on with; the message is for the CSU admin."""


class _LostLease(Exception):
    """Another attempt took the step over: this one stops without recording anything."""


def destruction_run_execute(*, run_id: int) -> DestructionRun:
    """Run the steps of a run that are not done yet, in order; return the run.

    1. Claim the run (queued -> running); a finished run returns at once.
    2. For each step not done: claim it with a lease (pending, or running with an
       expired lease: its worker died), do it, and record its evidence and an audit
       event in one transaction. A step done is never done again.
    3. When every step is done, the run has succeeded.
    """
    DestructionRun.objects.filter(pk=run_id, status=DestructionRun.Status.QUEUED).update(
        status=DestructionRun.Status.RUNNING, started_at=timezone.now()
    )
    run = DestructionRun.objects.select_related("programme", "requested_by").get(pk=run_id)
    if run.status != DestructionRun.Status.RUNNING:
        return run
    for step in run.steps.order_by("index"):
        if step.status == DestructionStep.Status.DONE:
            continue
        if step.status == DestructionStep.Status.FAILED:
            return run
        attempt = _claim(step)
        try:
            _do_step(run, step, attempt)
        except _LostLease:
            return run
        except (StepFailed, NotAllowedNow, signing.SigningKeyMissing) as exc:
            _fail(run, step, attempt, str(exc))
            run.refresh_from_db()
            return run
        except Exception:
            log.exception("step %s of destruction run %s failed", step.name, run.pk)
            _fail(
                run,
                step,
                attempt,
                "An unexpected error stopped this step; the technical team has the details in "
                "the log. Start the destruction again to resume from this step.",
            )
            run.refresh_from_db()
            return run
        run.refresh_from_db()
    with transaction.atomic():
        if DestructionRun.objects.filter(pk=run.pk, status=DestructionRun.Status.RUNNING).update(
            status=DestructionRun.Status.SUCCEEDED, finished_at=timezone.now()
        ):
            audit_log(
                actor=None,
                action="destruction.succeeded",
                obj=run.programme,
                details={"run": run.pk, "certificate": run.certificate.serial},
            )
    run.refresh_from_db()
    return run


def _claim(step: DestructionStep) -> int:
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
    claimed = DestructionStep.objects.filter(
        pk=step.pk, status=DestructionStep.Status.PENDING
    ).update(
        status=DestructionStep.Status.RUNNING,
        lease_until=now + lease,
        started_at=now,
        attempts=F("attempts") + 1,
    ) or DestructionStep.objects.filter(
        pk=step.pk, status=DestructionStep.Status.RUNNING, lease_until__lt=now
    ).update(lease_until=now + lease, attempts=F("attempts") + 1)
    step.refresh_from_db()
    if not claimed:
        if step.status == DestructionStep.Status.RUNNING and step.lease_until:
            raise StepBusy(max(1.0, (step.lease_until - now).total_seconds()))
        raise _LostLease
    return step.attempts


def _renewer(step: DestructionStep, attempt: int) -> Callable[[], None]:
    """Return a function that renews the step's lease; it raises _LostLease if taken over."""

    def renew() -> None:
        lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
        if not DestructionStep.objects.filter(
            pk=step.pk, status=DestructionStep.Status.RUNNING, attempts=attempt
        ).update(lease_until=timezone.now() + lease):
            raise _LostLease

    return renew


def _do_step(run: DestructionRun, step: DestructionStep, attempt: int) -> None:
    action, in_transaction = STEPS[step.name]
    renew = _renewer(step, attempt)

    def record(evidence: dict) -> None:
        won = DestructionStep.objects.filter(
            pk=step.pk, status=DestructionStep.Status.RUNNING, attempts=attempt
        ).update(
            status=DestructionStep.Status.DONE,
            evidence=evidence,
            finished_at=timezone.now(),
            lease_until=None,
        )
        if not won:
            raise _LostLease
        audit_log(
            actor=None,
            action=f"destruction.{step.name}",
            obj=run.programme,
            details={"run": run.pk, "step": step.name, "attempt": attempt, "evidence": evidence},
        )

    if in_transaction:
        with transaction.atomic():
            record(action(run, renew))
    else:
        evidence = action(run, renew)
        with transaction.atomic():
            record(evidence)


def _fail(run: DestructionRun, step: DestructionStep, attempt: int, message: str) -> None:
    with transaction.atomic():
        if DestructionStep.objects.filter(pk=step.pk, attempts=attempt).update(
            status=DestructionStep.Status.FAILED,
            lease_until=None,
            evidence={"error": message},
            finished_at=timezone.now(),
        ):
            DestructionRun.objects.filter(pk=run.pk, status=DestructionRun.Status.RUNNING).update(
                status=DestructionRun.Status.FAILED, error=message, finished_at=timezone.now()
            )
            audit_log(
                actor=None,
                action="destruction.failed",
                obj=run.programme,
                details={"run": run.pk, "step": step.name, "error": message},
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
    check(
        f"reading the output of each of the {jobs.count()} finished jobs is refused", not readable
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


def certificate_render(*, run: DestructionRun, serial: str, issued_at: dt.datetime) -> bytes:
    """Return the unsigned certificate PDF (WeasyPrint) of a run whose data is destroyed."""
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
        },
    )
    return weasyprint.HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf(
        pdf_variant="pdf/ua-1", pdf_tags=True
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
            {"programme": run.programme, "certificate": certificate, "run": run},
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


def destruction_runs_resume() -> list[int]:
    """Send again the runs whose worker died (a step's lease expired, or queued too long)."""
    now = timezone.now()
    stale = set(
        DestructionStep.objects.filter(
            status=DestructionStep.Status.RUNNING,
            lease_until__lt=now,
            run__status=DestructionRun.Status.RUNNING,
        ).values_list("run_id", flat=True)
    )
    lease = dt.timedelta(seconds=settings.PHM_DESTRUCTION_LEASE_SECONDS)
    stale |= set(
        DestructionRun.objects.filter(
            status=DestructionRun.Status.QUEUED, requested_at__lt=now - lease
        ).values_list("pk", flat=True)
    )
    for run_id in sorted(stale):
        _send(run_id)
    return sorted(stale)


# --- the signing key ---------------------------------------------------------------------
def signing_password() -> bytes:
    if settings.PHM_SIGNING_P12_PASSWORD:
        return settings.PHM_SIGNING_P12_PASSWORD.encode()
    return signing.derived_password(settings.KEY_ENCRYPTION_KEY)


def signing_key_init(*, common_name: str = signing.DEFAULT_COMMON_NAME, replace: bool = False):
    """Make the portal's signing key and self-signed certificate, saved encrypted (PKCS#12)."""
    path = Path(settings.PHM_SIGNING_P12_FILE)
    if path.exists() and not replace:
        raise NotAllowedNow(
            f"A signing key already exists at {path}; pass --replace to make a new one "
            "(certificates signed with the old key still verify)."
        )
    identity = signing.new_identity(common_name)
    signing.save_identity(identity, path, signing_password())
    signing_certificate_register(identity.certificate)
    audit_log(
        actor=None,
        action="signing_key.created",
        details={"fingerprint": identity.fingerprint, "subject": identity.subject},
    )
    return identity


def signing_certificate_register(certificate: x509.Certificate) -> SigningCertificate:
    """Record a certificate the portal signs with, so its certificates verify later."""
    record, _ = SigningCertificate.objects.get_or_create(
        fingerprint=signing.fingerprint(certificate),
        defaults={
            "subject": certificate.subject.rfc4514_string(),
            "certificate_pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "not_before": certificate.not_valid_before_utc,
            "not_after": certificate.not_valid_after_utc,
        },
    )
    return record


def signing_identity() -> signing.Identity:
    """Return the portal's signing identity; the demo makes it on first need."""
    path = Path(settings.PHM_SIGNING_P12_FILE)
    if not path.exists() and settings.PHM_SIGNING_KEY_ON_FIRST_NEED:
        try:
            return signing_key_init()
        except NotAllowedNow:  # another process made it first
            pass
    identity = signing.load_identity(path, signing_password())
    signing_certificate_register(identity.certificate)
    return identity


# --- reminders ------------------------------------------------------------------------------
def destruction_reminders_send(*, now: dt.datetime | None = None) -> list[str]:
    """Email the CSU admins about ended programmes whose data is not destroyed yet.

    One reminder per programme every PHM_DESTRUCTION_REMINDER_DAYS days; return the slugs.
    """
    now = now or timezone.now()
    since = now - dt.timedelta(days=settings.PHM_DESTRUCTION_REMINDER_DAYS)
    admins = sorted(
        User.objects.filter(role=User.Role.CSU_ADMIN, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    reminded = []
    due = Programme.objects.filter(status=Programme.Status.ENDED).exclude(
        destruction_runs__status__in=DestructionRun.ACTIVE
    )
    for programme in due.order_by("slug"):
        if programme.destruction_reminders.filter(sent_at__gte=since).exists():
            continue
        if admins:
            send_mail(
                subject=f"Destroy the data of {programme.name}: the programme has ended",
                message=render_to_string(
                    "destruction/reminder_email.txt",
                    {"programme": programme},
                ),
                from_email=None,
                recipient_list=admins,
            )
        with transaction.atomic():
            DestructionReminder.objects.create(programme=programme, recipients=admins)
            audit_log(
                actor=None,
                action="destruction.reminder_sent",
                obj=programme,
                details={"recipients": len(admins)},
            )
        reminded.append(programme.slug)
    return reminded
