"""The steps of a destruction run; each returns its evidence and may be run again safely."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from destruction.models import (
    Certificate,
    DestructionRun,
    DestructionStep,
)
from destruction.selectors import verify_address
from destruction.services.keys import signing_identity
from governance.models import Participation, Programme
from phm_portal.lib import signing
from phm_portal.shredders import lines_of, shredders

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step found something it cannot go on with; the message is for the CSU admin."""


METHOD = (
    "Purge by cryptographic erase (NIST SP 800-88 Rev. 1): every data key and the "
    "programme's pseudonymisation key were erased, so any copy of the encrypted data is "
    "unreadable; then every file and database row holding the data was deleted."
)


# --- step 1: the manifest ------------------------------------------------------------------
def manifest_build(*, programme: Programme, renew: Callable[[], None] = lambda: None) -> dict:
    """Return the manifest: each app's part of what the programme holds (its shredder's)."""
    parts = {s.app: s.manifest(programme, renew) for s in shredders()}
    return {
        "programme": programme.slug,
        "apps": parts,
        "totals": {app: part.get("totals", {}) for app, part in parts.items()},
    }


def manifest_hash(manifest: dict) -> str:
    """Return the SHA-256 of the manifest's canonical JSON (the certificate quotes it)."""
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _step_manifest(run: DestructionRun, renew: Callable[[], None]) -> dict:
    manifest = manifest_build(programme=run.programme, renew=renew)
    digest = manifest_hash(manifest)
    DestructionRun.objects.filter(pk=run.pk).update(manifest=manifest, manifest_sha256=digest)
    return {"manifest_sha256": digest, "totals": manifest["totals"]}


def _manifest_of(run: DestructionRun) -> dict:
    run.refresh_from_db(fields=["manifest", "manifest_sha256"])
    if run.manifest is None or manifest_hash(run.manifest) != run.manifest_sha256:
        raise StepFailed("The run's manifest is missing or does not match its hash.")
    return run.manifest


def _each(run: DestructionRun, step: str, *args) -> dict:
    """Run one step of every app's shredder on its part of the manifest; return the evidence."""
    manifest = _manifest_of(run)
    evidence = {}
    for shredder in shredders():
        part = manifest["apps"].get(shredder.app)
        if part is None:
            raise StepFailed(f"The manifest has no part of the {shredder.app} app.")
        evidence[shredder.app] = getattr(shredder, step)(run.programme, part, *args)
    return evidence


# --- step 2: erase the keys ---------------------------------------------------------------
def _step_erase_keys(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Erase every key of every app; from now on nothing is readable. The programme ends."""
    evidence = _each(run, "erase_keys")
    now = timezone.now()
    Programme.objects.filter(pk=run.programme_id).update(
        status=Programme.Status.DESTROYED, updated_at=now
    )
    DestructionRun.objects.filter(pk=run.pk, destroyed_at=None).update(destroyed_at=now)
    return {"apps": evidence, "programme_status": Programme.Status.DESTROYED}


# --- step 3: delete the files ---------------------------------------------------------------
def _step_delete_files(run: DestructionRun, renew: Callable[[], None]) -> dict:
    return {"apps": _each(run, "delete_files", renew)}


# --- step 4: delete the rows ---------------------------------------------------------------
def _step_delete_rows(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Delete the rows each app holds of the programme; audit events are never deleted."""
    return {"apps": _each(run, "delete_rows"), "kept": "Audit events are never deleted."}


# --- step 5: verify ---------------------------------------------------------------------------
def _step_verify(run: DestructionRun, renew: Callable[[], None]) -> dict:
    """Check, app by app, that nothing of the manifest remains."""
    checks = [
        {"app": app, **check} for app, found in _each(run, "verify").items() for check in found
    ]
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


PART_TITLES = {
    "datasets": "Extracts and pseudonymisation",
    "consent": "Opt-outs and cohorts",
    "notices": "Privacy notice",
}

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
            "parts": [
                {
                    "title": PART_TITLES.get(s.app, s.app),
                    "holds": s.holds,
                    "lines": lines_of(manifest["apps"].get(s.app, {})),
                }
                for s in shredders()
            ],
            # The datasets app's keys and extracts are named one by one.
            "datasets": manifest["apps"].get("datasets", {}),
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
