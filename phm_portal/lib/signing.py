"""The portal's signing key and certificate, PAdES signatures, and their validation (pyHanko).

The key and its self-signed certificate live in a PKCS#12 file, encrypted with a password
(PHM_SIGNING_P12_PASSWORD, or one derived from the key-encryption key when that is not
set). Only the certificate, never the key, is stored in the database.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from phm_portal.lib import pdf_inspect

DEFAULT_COMMON_NAME = "PHM governance portal: data destruction certificates"


class SigningKeyMissing(Exception):
    """No signing key is configured or made yet."""


@dataclass(frozen=True)
class Identity:
    """A private key and its certificate, loaded from the PKCS#12 file."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def derived_password(kek: bytes) -> bytes:
    """Return the PKCS#12 password derived from the key-encryption key."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"phm-portal signing p12 v1"
    ).derive(kek)
    return base64.urlsafe_b64encode(raw)


def new_identity(common_name: str = DEFAULT_COMMON_NAME, days: int = 3650) -> Identity:
    """Return a fresh RSA-3072 key and a self-signed certificate for signing documents."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PHM governance portal"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(key, certificate)


def save_identity(identity: Identity, path: Path, password: bytes) -> None:
    """Write the identity to a PKCS#12 file encrypted with the password (mode 0600)."""
    data = pkcs12.serialize_key_and_certificates(
        b"phm-portal-signing",
        identity.key,
        identity.certificate,
        None,
        serialization.BestAvailableEncryption(password),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load_identity(path: Path, password: bytes) -> Identity:
    """Return the identity of a PKCS#12 file; SigningKeyMissing if it is absent or unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyMissing(
            f"No signing key at {path}: run `python manage.py signing_key init`, or name a "
            "PKCS#12 file in PHM_SIGNING_P12_FILE."
        ) from None
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise SigningKeyMissing(
            f"The signing key file {path} cannot be opened with the configured password."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or certificate is None:
        raise SigningKeyMissing(f"{path} holds no RSA key with its certificate.")
    return Identity(key, certificate)


# --- signing -----------------------------------------------------------------------
def sign_pdf(pdf: bytes, identity: Identity, *, reason: str, location: str, name: str) -> bytes:
    """Return the PDF with an embedded PAdES (B-B) signature made with the identity."""
    from asn1crypto import keys as asn1_keys
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert = _asn1(identity.certificate)
    key_der = identity.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([cert]),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name="PortalSignature",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        name=name,
    )
    return signers.sign_pdf(writer, meta, signer=signer).getvalue()


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


# --- validation ----------------------------------------------------------------------
@dataclass
class SignatureCheck:
    """What a validator says of a PDF's signature, in words a person can act on."""

    signed: bool = False
    intact: bool = False
    trusted: bool = False
    whole_file: bool = False
    signer_subject: str = ""
    signer_fingerprint: str = ""
    signed_at: dt.datetime | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def genuine(self) -> bool:
        """Signed with a key of this portal (its certificate is one the portal issued)."""
        return self.signed and self.trusted

    @property
    def unmodified(self) -> bool:
        """Nothing changed since signing: the digest matches and the signature covers every byte."""
        return self.signed and self.intact and self.whole_file


class UnreadablePdf(Exception):
    """The file is not a PDF that can be read (empty, another kind, damaged, hostile)."""


def check_pdf(
    data: bytes, trusted: list[x509.Certificate], *, limits: pdf_inspect.Limits
) -> SignatureCheck:
    """Validate the PDF's embedded signature against the portal's certificates.

    The bytes are read in a limited child process (see pdf_inspect); UnreadablePdf, saying
    why, when they are not a PDF that can be read within the limits.
    """
    der = [c.public_bytes(serialization.Encoding.DER) for c in trusted]
    try:
        answer = pdf_inspect.inspect(data, der, limits=limits)
    except pdf_inspect.InspectionFailed as exc:
        raise UnreadablePdf(str(exc)) from None
    result = SignatureCheck(
        signed=answer.get("signed") is True,
        intact=answer.get("intact") is True,
        trusted=answer.get("trusted") is True,
        whole_file=answer.get("whole_file") is True,
        signer_subject=_text(answer.get("signer_subject")),
        signer_fingerprint=_text(answer.get("signer_fingerprint")),
        signed_at=_when(answer.get("signed_at")),
        reasons=[_text(r) for r in answer.get("reasons") or [] if isinstance(r, str)],
    )
    if not result.signed:
        return result
    if not result.intact:
        result.reasons.append(
            "The document was changed after it was signed: the signature does not match its bytes."
        )
    elif not result.whole_file:
        result.reasons.append("Bytes were added after the signature; they are not covered by it.")
    if result.intact and not result.trusted:
        result.reasons.append(
            "The signature was not made with this portal's key: the certificate is not genuine."
        )
    return result


def _text(value: object) -> str:
    return value[:1000] if isinstance(value, str) else ""


def _when(value: object) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
