"""The portal's signing key: made, loaded, and its certificate recorded."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from destruction.models import (
    SigningCertificate,
)
from phm_portal.audit import audit_log
from phm_portal.errors import NotAllowedNow
from phm_portal.lib import signing

log = logging.getLogger(__name__)


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
