"""Reads of the destruction app: checking a certificate, what a programme's destruction was."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from destruction.models import Certificate, DestructionRun, SigningCertificate
from governance.models import Organisation, Participation, Programme
from phm_portal.errors import InvalidInput
from phm_portal.lib import pdf_inspect, signing
from phm_portal.shredders import shredders


@dataclass
class Verification:
    """The answer to "is this certificate genuine and unmodified, and whose is it?"."""

    valid: bool = False
    genuine: bool = False
    unmodified: bool = False
    serial: str | None = None
    programme: str | None = None
    programme_name: str | None = None
    run: int | None = None
    signed_by: str | None = None
    signed_at: dt.datetime | None = None
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "valid": self.valid,
            "genuine": self.genuine,
            "unmodified": self.unmodified,
            "serial": self.serial,
            "programme": self.programme,
            "programme_name": self.programme_name,
            "run": self.run,
            "signed_by": self.signed_by,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "reasons": self.reasons,
        }


def portal_certificates() -> list[x509.Certificate]:
    """Return every certificate the portal has signed with (older keys still verify)."""
    return [
        x509.load_pem_x509_certificate(pem.encode())
        for pem in SigningCertificate.objects.values_list("certificate_pem", flat=True)
    ]


def verify_address() -> str:
    """Return the full address of the page where anyone checks a certificate."""
    return settings.PHM_PUBLIC_URL + reverse("certificate-verify")


class CertificateTooLarge(InvalidInput):
    """The file to check is over PHM_CERTIFICATE_MAX_BYTES (413)."""

    status_code = 413


def certificate_verify(*, data: bytes) -> Verification:
    """Check a PDF: signed by this portal, unchanged, and a certificate the portal issued.

    1. Refuse a file over the size limit (413) or one that is not a readable PDF (400,
       naming the field `file`); the bytes are read in a limited child process.
    2. Validate the embedded signature (pyHanko) against the portal's certificates.
    3. Only for a signature that validates with the portal's key over the whole file, name
       who signed and when, and find the certificate the portal issued with exactly these
       bytes; then name its serial, programme and run. Nothing is named for any other file,
       whatever serial its bytes claim.
    """
    limit = settings.PHM_CERTIFICATE_MAX_BYTES
    if len(data) > limit:
        raise CertificateTooLarge(
            f"The file is larger than the limit of {limit:,} bytes.", field="file"
        )
    limits = pdf_inspect.Limits(
        seconds=settings.PHM_CERTIFICATE_CHECK_SECONDS,
        memory_mb=settings.PHM_CERTIFICATE_CHECK_MEMORY_MB,
    )
    try:
        check = signing.check_pdf(data, portal_certificates(), limits=limits)
    except signing.UnreadablePdf as exc:
        raise InvalidInput(str(exc), field="file") from None
    result = Verification(
        genuine=check.genuine, unmodified=check.unmodified, reasons=list(check.reasons)
    )
    if not (check.genuine and check.unmodified):
        return result
    result.signed_by = check.signer_subject or None
    result.signed_at = check.signed_at
    record = Certificate.objects.select_related("programme").filter(sha256=_sha(data)).first()
    if record is None:
        result.reasons.append("This portal has no record of issuing this document.")
        return result
    result.serial = record.serial
    result.programme = record.programme.slug
    result.programme_name = record.programme.name
    result.run = record.run_id
    result.valid = True
    return result


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def programme_destruction(programme: Programme) -> DestructionRun | None:
    """Return the run that destroyed the programme's data (keys erased), if any."""
    return (
        programme.destruction_runs.filter(destroyed_at__isnull=False)
        .order_by("destroyed_at")
        .first()
    )


def certificates_of_organisation(organisation: Organisation) -> QuerySet[Certificate]:
    """Return the certificates of programmes where the organisation is controller or processor."""
    programmes = Participation.objects.filter(
        organisation=organisation,
        role__in=[*Participation.CONTROLLER_ROLES, *Participation.PROCESSOR_ROLES],
    ).values("programme")
    return Certificate.objects.filter(programme__in=programmes).select_related("programme")


def destruction_preview(programme: Programme) -> dict:
    """Return what a destruction of the programme would take now, app by app (no hashing)."""
    preview: dict = {}
    for shredder in shredders():
        preview.update(shredder.preview(programme))
    return preview
